"""Preprocessing the model consumes: clean angiograms, cached on disk by content and parameters."""

from .angiogram import PreprocessConfig, border_bands, clean_angiogram, overlay_text_mask
from .cache import ImageCache

__all__ = ["ImageCache", "PreprocessConfig", "border_bands", "clean_angiogram", "overlay_text_mask"]
