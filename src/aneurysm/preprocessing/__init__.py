"""Preprocessing the model consumes: clean angiograms, cached on disk by content and parameters."""

from .angiogram import (
    ARTERY_UNKNOWN,
    CELL_ANEURYSM,
    CELL_BACKGROUND,
    CELL_UNKNOWN,
    PreprocessConfig,
    artery_cells,
    border_bands,
    clean_angiogram,
    footprint_cells,
    overlay_text_mask,
)
from .cache import ImageCache

__all__ = ["ARTERY_UNKNOWN", "CELL_ANEURYSM", "CELL_BACKGROUND", "CELL_UNKNOWN", "ImageCache", "PreprocessConfig",
           "artery_cells", "border_bands", "clean_angiogram", "footprint_cells", "overlay_text_mask"]
