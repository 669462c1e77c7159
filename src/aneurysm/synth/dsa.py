"""Render an anatomy as a digital subtraction angiogram: one injection, one projection.

Vessels attenuate by their projected chord length times the contrast that injection brings them,
so a vessel is dark where it is thick and well filled, as on real DSA. The background is light
grey with faint subtraction residue and noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..schema.views import ViewType
from .anatomy import Anatomy

_SUPERSAMPLE = 2
_ATTENUATION_PER_MM = 0.33


@dataclass(frozen=True)
class Pose:
    """Head orientation and framing for one patient; shared by the patient's views."""

    rotation: np.ndarray  # 3x3
    fov_mm: float
    center_mm: tuple[float, float]
    background: float
    noise: float
    residue_seed: int


def sample_pose(rng: np.random.Generator) -> Pose:
    angles = np.deg2rad(rng.normal(0.0, 4.0, size=3))
    return Pose(
        rotation=_rotation(*angles),
        fov_mm=float(rng.uniform(165.0, 195.0)),
        center_mm=(float(rng.normal(0, 5)), float(rng.normal(-5, 6))),
        background=float(rng.uniform(190.0, 215.0)),
        noise=float(rng.uniform(1.5, 3.5)),
        residue_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _injection(view: ViewType) -> str:
    return view.side + ("I" if view.artery == "ICA" else "V")


def _project(points: np.ndarray, view: ViewType, pose: Pose) -> np.ndarray:
    """3-D mm -> 2-D mm in the image plane: (u to the right, v downward)."""
    rot = pose.rotation
    if view.projection == "frontal" and view.artery == "VA":
        rot = _rotation(np.deg2rad(-20.0), 0.0, 0.0) @ rot  # Towne-like tilt for vertebral APs
    p = points @ rot.T
    if view.projection == "frontal":
        u, v = -p[:, 0], -p[:, 2]  # radiological convention: patient's right on image left
        u0, v0 = 0.0, -10.0 if view.artery == "VA" else 0.0
    else:
        u, v = -p[:, 1], -p[:, 2]  # lateral: face to the left
        u0, v0 = (35.0, 5.0) if view.artery == "VA" else (15.0, 0.0)
    return np.stack([u - u0 - pose.center_mm[0], v - v0 - pose.center_mm[1]], axis=1)


def _to_pixels(uv: np.ndarray, shape: tuple[int, int], spacing: float) -> np.ndarray:
    h, w = shape
    return np.stack([uv[:, 0] / spacing + w / 2.0, uv[:, 1] / spacing + h / 2.0], axis=1)


def _vessel_attenuation(anatomy: Anatomy, view: ViewType, pose: Pose, shape: tuple[int, int],
                        spacing: float, small: bool) -> np.ndarray:
    """Attenuation (contrast x chord mm) of the large or the small vessels, by distance transform.

    Large and small vessels are drawn separately so a thin branch crossing a trunk never carves a
    notch into it; within each class the nearest centreline wins.
    """
    inj = _injection(view)
    h, w = shape
    radius_px = np.zeros(shape, dtype=np.float32)
    contrast = np.zeros(shape, dtype=np.float32)
    any_drawn = False
    for seg in anatomy.segments:
        c = seg.fills.get(inj, 0.0)
        if c <= 0.0 or (seg.radii.max() < 0.9) != small:
            continue
        px = _to_pixels(_project(seg.points, view, pose), shape, spacing)
        # resample to < 0.5 px so the centreline raster has no gaps
        steps = np.linalg.norm(np.diff(px, axis=0), axis=1)
        n = max(int(steps.sum() / 0.4), 2)
        cum = np.concatenate([[0.0], np.cumsum(steps)])
        s = np.linspace(0.0, cum[-1], n)
        x = np.interp(s, cum, px[:, 0])
        y = np.interp(s, cum, px[:, 1])
        r = np.interp(s, cum, seg.radii) / spacing
        xi, yi = np.rint(x).astype(int), np.rint(y).astype(int)
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        if not ok.any():
            continue
        any_drawn = True
        np.maximum.at(radius_px, (yi[ok], xi[ok]), r[ok].astype(np.float32))
        np.maximum.at(contrast, (yi[ok], xi[ok]), np.float32(c))
    if not any_drawn:
        return np.zeros(shape, dtype=np.float32)
    dist, (iy, ix) = ndimage.distance_transform_edt(radius_px == 0, return_indices=True)
    r = radius_px[iy, ix]
    chord_px = 2.0 * np.sqrt(np.clip(r**2 - dist**2, 0.0, None))
    return (chord_px * spacing * contrast[iy, ix]).astype(np.float32)


def _sphere_attenuation(anatomy: Anatomy, view: ViewType, pose: Pose, shape: tuple[int, int],
                        spacing: float) -> tuple[np.ndarray, list[tuple[str, float, float, float]]]:
    inj = _injection(view)
    out = np.zeros(shape, dtype=np.float32)
    marks: list[tuple[str, float, float, float]] = []
    fills = {s.name: s.fills for s in anatomy.segments}
    h, w = shape
    for sph in anatomy.spheres:
        c = fills[sph.segment].get(inj, 0.0)
        if c <= 0.0:
            continue
        (cx, cy), = _to_pixels(_project(sph.center[None, :], view, pose), shape, spacing)
        rp = sph.radius / spacing
        x0, x1 = int(max(cx - rp - 1, 0)), int(min(cx + rp + 2, w))
        y0, y1 = int(max(cy - rp - 1, 0)), int(min(cy + rp + 2, h))
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d2 = (xx - cx) ** 2 + (yy - cy) ** 2
        chord = 2.0 * np.sqrt(np.clip(rp**2 - d2, 0.0, None)) * spacing
        out[y0:y1, x0:x1] += c * chord
        if sph.location is not None:
            marks.append((sph.location, cx / _SUPERSAMPLE, cy / _SUPERSAMPLE, rp / _SUPERSAMPLE))
    return out, marks


def _residue(shape: tuple[int, int], view: ViewType, pose: Pose, spacing: float) -> np.ndarray:
    """Faint subtraction residue: a skull-outline ring and a smooth random field."""
    rng = np.random.default_rng(pose.residue_seed + (0 if view.projection == "frontal" else 1))
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    u = (xx - w / 2.0) * spacing + pose.center_mm[0]
    v = (yy - h / 2.0) * spacing + pose.center_mm[1]
    ax, ay = (72.0, 88.0) if view.projection == "frontal" else (92.0, 84.0)
    ell = np.sqrt((u / ax) ** 2 + ((v + 10.0) / ay) ** 2)
    ring = np.exp(-0.5 * ((ell - 1.0) / 0.05) ** 2) * rng.uniform(-5.0, 5.0)
    field = ndimage.gaussian_filter(rng.normal(size=(h // 8 + 1, w // 8 + 1)), 3.0)
    field = ndimage.zoom(field, (h / field.shape[0], w / field.shape[1]), order=1)[:h, :w]
    field *= 3.0 / max(np.abs(field).max(), 1e-6)
    return (ring + field).astype(np.float32)


def render_dsa(anatomy: Anatomy, view: ViewType, pose: Pose, size: tuple[int, int],
               rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[str, float, float, float]]]:
    """Render one view as an HxW uint8 DSA frame; also return aneurysm marks (loc, x, y, r px)."""
    h, w = size
    shape = (h * _SUPERSAMPLE, w * _SUPERSAMPLE)
    spacing = pose.fov_mm / max(shape)
    att = _vessel_attenuation(anatomy, view, pose, shape, spacing, small=False)
    att += _vessel_attenuation(anatomy, view, pose, shape, spacing, small=True)
    sph, marks = _sphere_attenuation(anatomy, view, pose, shape, spacing)
    att += sph
    att = att.reshape(h, _SUPERSAMPLE, w, _SUPERSAMPLE).mean(axis=(1, 3))
    image = pose.background * np.exp(-_ATTENUATION_PER_MM * att)
    image = ndimage.gaussian_filter(image, 0.6)
    image += _residue((h, w), view, pose, spacing * _SUPERSAMPLE)
    image += rng.normal(0.0, pose.noise, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), marks
