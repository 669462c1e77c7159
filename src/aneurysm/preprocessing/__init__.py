"""Preprocessing the model consumes: clean angiograms, cached on disk by content and parameters.

``ImageCache`` resolves on first use: the cache is built on MONAI, whose import takes seconds,
and reading a config or ``aneurysm --help`` needs only the angiogram settings.
"""

from typing import Any

from .angiogram import (
    ARTERY_UNKNOWN,
    CELL_ANEURYSM,
    CELL_BACKGROUND,
    CELL_UNKNOWN,
    artery_cells,
    border_bands,
    clean_angiogram,
    footprint_cells,
    overlay_text_mask,
)
from .config import PreprocessConfig

__all__ = ["ARTERY_UNKNOWN", "CELL_ANEURYSM", "CELL_BACKGROUND", "CELL_UNKNOWN", "ImageCache", "PreprocessConfig",
           "artery_cells", "border_bands", "clean_angiogram", "footprint_cells", "overlay_text_mask"]


def __getattr__(name: str) -> Any:
    if name == "ImageCache":
        from .cache import ImageCache

        return ImageCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
