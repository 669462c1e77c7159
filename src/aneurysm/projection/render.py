"""Render one canonical volume as the eight projection views, with each view's aneurysm footprint.

A MIP along the anterior-posterior axis of a vessel-bright volume resembles a frontal angiogram;
along the left-right axis, a lateral one. Inverted, vessels are dark on light as on DSA. A
hemisphere, or the posterior half, roughly imitates a single-artery injection.

The footprint of a view is the lesion label volume projected along the same rays through the same
region: where an aneurysm lies on a ray, the pixel is aneurysm; where only an unknown label does
(a treated aneurysm, the uncertain rim around a point annotation), the pixel is unknown. It is the
per-pixel target of the dense model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..schema import PROJECTION_VIEW_NAMES

#: Bump when the algorithm changes, so no cached projection from older code is served.
ALGORITHM_VERSION = 3


@dataclass(frozen=True)
class ProjectionConfig:
    spacing_mm: float = 1.0  # isotropic resampling before projecting
    background: float = 205.0  # grey level of empty space, as on DSA
    contrast: float = 0.75  # how dark the brightest vessel becomes
    cta_window_low: float = 150.0  # HU: contrast-filled vessels start here
    cta_window_high: float = 500.0
    cta_bone_level: float = 700.0  # HU above which a voxel is bone, suppressed with a margin

    def cache_params(self) -> dict:
        return {"algorithm": ALGORITHM_VERSION, **asdict(self)}


#: Footprint pixel values: an aneurysm lies on the ray; only an unknown label does; nothing does.
FOOTPRINT_ANEURYSM, FOOTPRINT_UNKNOWN, FOOTPRINT_BACKGROUND = 255, 128, 0
#: Lesion label volume values (see ``project_volume``).
LESION, UNKNOWN = 1, 2


def resample_isotropic(data: np.ndarray, spacing: tuple[float, float, float], target: float,
                       order: int = 1) -> np.ndarray:
    factors = [s / target for s in spacing]
    if np.allclose(factors, 1.0, atol=1e-3):
        return data
    return ndimage.zoom(data, factors, order=order)


def vessel_bright(data: np.ndarray, modality: str, config: ProjectionConfig) -> np.ndarray:
    """Intensities in [0, 1] where contrast-filled vessels are bright and the rest dark."""
    m = modality.upper()
    if m.startswith("CT"):
        bone = ndimage.binary_dilation(data > config.cta_bone_level, iterations=3)
        hu = np.where(bone, 0.0, data)
        span = config.cta_window_high - config.cta_window_low
        return np.clip((hu - config.cta_window_low) / span, 0.0, 1.0).astype(np.float32)
    if "T2" in m:  # flowing blood is dark on T2: invert within the head
        head = data > np.percentile(data, 20)
        lo, hi = np.percentile(data[head], [1, 99]) if head.any() else (0.0, 1.0)
        out = np.clip((hi - data) / max(hi - lo, 1e-6), 0.0, 1.0)
        return np.where(head, out, 0.0).astype(np.float32)
    # TOF-MRA, T1post, 3DRA: bright already. Vessels fill a few percent of a head volume, so the
    # 97th percentile sits on stationary tissue: below it is background.
    lo, hi = np.percentile(data, [97, 99.95])
    return np.clip((data - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


def _regions(bright: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the regions each view projects, split at the vessels' centroid."""
    w = bright**2
    total = float(w.sum()) or 1.0
    grid = np.indices(bright.shape[:2], dtype=np.float32)
    cx = float((w.sum(axis=2) * grid[0]).sum() / total)
    cy = float((w.sum(axis=2) * grid[1]).sum() / total)
    x = np.arange(bright.shape[0])[:, None, None]
    y = np.arange(bright.shape[1])[None, :, None]
    return {
        "ALL": np.ones((1, 1, 1), dtype=bool),
        "L": np.broadcast_to(x < cx, (bright.shape[0], 1, 1)),
        "R": np.broadcast_to(x >= cx, (bright.shape[0], 1, 1)),
        "POST": np.broadcast_to(y < cy, (1, bright.shape[1], 1)),
    }


def _orient(plane: np.ndarray) -> np.ndarray:
    """(a, z) projection -> (row, column) image with superior up, first axis reversed."""
    return plane[::-1, ::-1].T


def _to_image(mip: np.ndarray, config: ProjectionConfig) -> np.ndarray:
    img = config.background * (1.0 - config.contrast * mip)
    return np.clip(np.rint(_orient(img)), 0, 255).astype(np.uint8)


def _footprint(labels: np.ndarray, region: np.ndarray, axis: int) -> np.ndarray:
    """uint8 footprint image of a lesion label volume seen through ``region`` along ``axis``."""
    inside = np.where(region, labels, 0)
    lesion = _orient((inside == LESION).any(axis=axis))
    unknown = _orient((inside == UNKNOWN).any(axis=axis))
    out = np.full(lesion.shape, FOOTPRINT_BACKGROUND, dtype=np.uint8)
    out[unknown] = FOOTPRINT_UNKNOWN
    out[lesion] = FOOTPRINT_ANEURYSM
    return out


def _project_point(p: np.ndarray, shape: tuple[int, int, int], projection: str
                   ) -> tuple[float, float]:
    """Canonical voxel (x, y, z) -> (column, row) in the rendered view."""
    nx, ny, nz = shape
    row = nz - 1 - p[2]
    col = (nx - 1 - p[0]) if projection == "A" else (ny - 1 - p[1])
    return float(col), float(row)


def project_volume(data: np.ndarray, spacing: tuple[float, float, float], modality: str,
                   config: ProjectionConfig, lesions: list[tuple[np.ndarray, float]] = (),
                   labels: np.ndarray | None = None) -> tuple[dict, list[dict], dict]:
    """Views {name: uint8 image}, lesion positions [{view, x, y, r}] in view pixels, and
    footprints {name: uint8 image} (``FOOTPRINT_*`` values; empty when ``labels`` is None).

    ``lesions`` are (canonical voxel centre, radius in voxels) in the *input* grid; ``labels`` is
    a lesion label volume on that grid (0 background, ``LESION``, ``UNKNOWN``).
    """
    iso = resample_isotropic(data, spacing, config.spacing_mm)
    scale = np.array(spacing) / config.spacing_mm
    bright = vessel_bright(iso, modality, config)
    iso_labels = (None if labels is None
                  else resample_isotropic(labels, spacing, config.spacing_mm, order=0))
    regions = _regions(bright)
    views: dict[str, np.ndarray] = {}
    footprints: dict[str, np.ndarray] = {}
    positions: list[dict] = []
    for name in PROJECTION_VIEW_NAMES:
        _, region, projection = name.split("-")
        axis = 1 if projection == "A" else 0
        masked = bright * regions[region]
        mip = masked.max(axis=axis)
        views[name] = _to_image(mip, config)
        if iso_labels is not None:
            footprints[name] = _footprint(iso_labels, regions[region], axis)
        for centre, radius in lesions:
            c = np.asarray(centre) * scale
            inside = bool(np.broadcast_to(regions[region], bright.shape)[
                tuple(np.clip(np.rint(c).astype(int), 0, np.array(bright.shape) - 1))])
            if inside:
                x, y = _project_point(c, bright.shape, projection)
                positions.append({"view": name, "x": round(x, 1), "y": round(y, 1),
                                  "r": round(float(radius * scale.mean()), 1)})
    return views, positions, footprints
