"""Projection modes: how the rays through a volume become a view's grey levels. A registry
(name -> renderer), so a new mode is a function, not a branch in the renderer.

Every mode shares one geometry (the C-arm's cone beam through the injected territory) and one
annotation path (footprints, artery maps, aneurysm centres): only the image differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

#: a renderer's settings: ``config.ProjectionConfig`` (not imported: config imports this module)
ProjectionConfig = Any


class Rays:
    """What a renderer reads of one view: per detector pixel, the path length (mm) through the
    mode's volume (``total``), and on demand its maximum along the ray (``peak()``)."""

    def __init__(self, total: np.ndarray, peak: Callable[[], np.ndarray]) -> None:
        self.total = total
        self._peak = peak

    def peak(self) -> np.ndarray:
        return self._peak()


@dataclass(frozen=True)
class ProjectionMode:
    #: the volume the rays run through: "occupancy" (lumen fraction per voxel, the contrast
    #: path) or "intensity" (the vessel brightness the modality shows)
    reads: str
    render: Callable[[Rays, ProjectionConfig], np.ndarray]  # -> uint8 image


#: name -> renderer; ``projection.mode`` picks one
PROJECTION_MODES: dict[str, ProjectionMode] = {}


def register_projection_mode(name: str, reads: str = "occupancy", replace: bool = False):
    """Decorator: add ``render(rays, config) -> uint8 image`` as projection mode ``name``.

    A mode changes the cached projections, so ``ProjectionConfig.cache_params`` keys by name."""
    if reads not in ("occupancy", "intensity"):
        raise ValueError(f"a projection mode reads occupancy or intensity, not {reads!r}")

    def add(render: Callable[[Rays, ProjectionConfig], np.ndarray]):
        if name in PROJECTION_MODES and not replace:
            raise ValueError(f"projection mode {name!r} is already registered")
        PROJECTION_MODES[name] = ProjectionMode(reads, render)
        return render
    return add


def _grey(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


@register_projection_mode("drr", reads="occupancy")
def render_drr(rays: Rays, config: ProjectionConfig) -> np.ndarray:
    """Beer-Lambert through the contrast-filled lumen, as DSA shows it."""
    return _grey(config.background * np.exp(-config.mu_per_mm * rays.total))


@register_projection_mode("mip", reads="intensity")
def render_mip(rays: Rays, config: ProjectionConfig) -> np.ndarray:
    """An inverted maximum-intensity projection: the brightest vessel on the ray, darkened."""
    return _grey(config.background * (1 - config.contrast * rays.peak()))
