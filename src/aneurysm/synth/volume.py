"""Voxelise an anatomy into a 3-D volume: TOF-MRA, CTA or 3DRA-like intensities and masks.

The same ``Anatomy`` the DSA renderer draws, so external and challenge data share one world.
Volumes are in RAS+ voxel order (axis 0 = x to the patient's right, 1 = anterior, 2 = superior).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import Anatomy

#: Field of view of the synthetic head volumes, mm (x, y, z) and its origin (RAS, mm).
FOV_MM = np.array([140.0, 150.0, 150.0])
ORIGIN_MM = np.array([-70.0, -85.0, -80.0])


#: TopCoW's Circle-of-Willis labels of the anatomy model's segments (its 13 classes name no VA,
#: SCA, PICA, anterior choroidal or cortical branch: those voxels stay 0, as in TopCoW).
TOPCOW_LABELS: dict[str, int] = {
    "BA": 1, "R_PCA": 2, "L_PCA": 3, "R_ICA": 4, "R_MCA": 5, "L_ICA": 6, "L_MCA": 7,
    "R_PCOM": 8, "L_PCOM": 9, "ACOM": 10, "R_ACA": 11, "L_ACA": 12,
    "R_MCA_sup": 5, "R_MCA_inf": 5, "L_MCA_sup": 7, "L_MCA_inf": 7,
}


@dataclass(frozen=True)
class SynthVolume:
    image: np.ndarray  # float32 intensities (HU for CTA)
    lesions: np.ndarray  # uint8: 0 background, k = k-th aneurysm (1-based)
    affine: np.ndarray  # voxel -> RAS mm
    spacing: float
    lesion_locations: tuple[str, ...] = ()  # K-ium location of lesion id k at index k - 1
    arteries: np.ndarray | None = None  # uint8 TopCoW labels of the vessel voxels


def _grid(spacing: float) -> tuple[tuple[int, int, int], np.ndarray]:
    shape = tuple(int(round(f / spacing)) for f in FOV_MM)
    affine = np.eye(4)
    affine[:3, :3] *= spacing
    affine[:3, 3] = ORIGIN_MM
    return shape, affine


def _vessel_mask(anatomy: Anatomy, shape: tuple[int, int, int], spacing: float,
                 injection: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Voxels within each centreline's radius (nearest-centreline distance transform), and
    the TopCoW label of the segment each vessel voxel belongs to."""
    radius = np.zeros(shape, dtype=np.float32)
    owner = np.zeros(shape, dtype=np.uint8)
    for seg in anatomy.segments:
        if injection is not None and seg.fills.get(injection, 0.0) <= 0.0:
            continue
        steps = np.linalg.norm(np.diff(seg.points, axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(steps)])
        n = max(int(cum[-1] / (0.4 * spacing)), 2)
        s = np.linspace(0.0, cum[-1], n)
        pts = np.stack([np.interp(s, cum, seg.points[:, k]) for k in range(3)], axis=1)
        r = np.interp(s, cum, seg.radii) / spacing
        ijk = np.rint((pts - ORIGIN_MM) / spacing).astype(int)
        ok = np.all((ijk >= 0) & (ijk < np.array(shape)), axis=1)
        where, r = tuple(ijk[ok].T), r[ok].astype(np.float32)
        wider = r >= radius[where]  # a voxel on two centrelines belongs to the wider vessel
        owner[tuple(a[wider] for a in where)] = TOPCOW_LABELS.get(seg.name, 0)
        np.maximum.at(radius, where, r)
    if not radius.any():
        return np.zeros(shape, dtype=bool), owner
    dist, idx = ndimage.distance_transform_edt(radius == 0, return_indices=True)
    vessels = dist <= np.maximum(radius[tuple(idx)], 0.5)
    return vessels, np.where(vessels, owner[tuple(idx)], 0).astype(np.uint8)


def _spheres(anatomy: Anatomy, shape: tuple[int, int, int], spacing: float,
             injection: str | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Masks of all spheres and the 1-based lesion id of each aneurysm voxel."""
    fills = {s.name: s.fills for s in anatomy.segments}
    any_sphere = np.zeros(shape, dtype=bool)
    lesions = np.zeros(shape, dtype=np.uint8)
    lesion_id: dict[tuple, int] = {}
    for sph in anatomy.spheres:
        if injection is not None and fills[sph.segment].get(injection, 0.0) <= 0.0:
            continue
        c = (sph.center - ORIGIN_MM) / spacing
        r = sph.radius / spacing
        lo = np.maximum(np.floor(c - r - 1).astype(int), 0)
        hi = np.minimum(np.ceil(c + r + 2).astype(int), np.array(shape))
        if np.any(lo >= hi):
            continue
        grid = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        d2 = sum((g - ci) ** 2 for g, ci in zip(grid, c))
        inside = d2 <= max(r**2, float(d2.min()))  # at least the nearest voxel, at any spacing
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        any_sphere[box] |= inside
        if sph.location is not None:
            key = (sph.segment, sph.location)  # a daughter sac belongs to its parent aneurysm
            k = lesion_id.setdefault(key, len(lesion_id) + 1)
            lesions[box][inside & (lesions[box] == 0)] = k  # touching aneurysms keep their own
    # an aneurysm swallowed whole by a neighbour has no voxel of its own: renumber the rest, so
    # every written mask holds its lesion (a source's reader rightly refuses an empty mask)
    kept = [k for k in range(1, len(lesion_id) + 1) if (lesions == k).any()]
    if len(kept) < len(lesion_id):
        renumber = np.zeros(len(lesion_id) + 1, dtype=np.uint8)
        renumber[kept] = np.arange(1, len(kept) + 1)
        lesions = renumber[lesions]
    return any_sphere, lesions, tuple(loc for (_, loc), k in lesion_id.items() if k in kept)


def voxelise(anatomy: Anatomy, modality: str, spacing: float, rng: np.random.Generator,
             injection: str | None = None) -> SynthVolume:
    """``modality``: "TOF" (MRA), "CTA" or "3DRA". 3DRA shows only ``injection``'s territory."""
    shape, affine = _grid(spacing)
    vessels, arteries = _vessel_mask(anatomy, shape, spacing, injection)
    spheres, lesions, lesion_locations = _spheres(anatomy, shape, spacing, injection)
    vessels |= spheres
    x, y, z = np.meshgrid(*(np.arange(n) * spacing + o for n, o in zip(shape, ORIGIN_MM)),
                          indexing="ij")
    head = ((x / 68.0) ** 2 + ((y + 12.0) / 80.0) ** 2 + ((z - 5.0) / 78.0) ** 2)
    brain = head < 0.85
    skull = (head >= 0.85) & (head < 1.0)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 3.0)
    smooth /= max(float(np.abs(smooth).max()), 1e-6)
    if modality == "CTA":
        img = np.full(shape, -1000.0, dtype=np.float32)  # air
        img[brain] = 35.0
        img[skull] = 1100.0 + 200.0 * smooth[skull]
        img[vessels] = rng.uniform(280.0, 420.0)
        img += rng.normal(0.0, 8.0, shape).astype(np.float32)
    elif modality == "TOF":
        img = np.zeros(shape, dtype=np.float32)
        img[brain] = 110.0 + 25.0 * smooth[brain]
        img[skull] = 40.0
        img[vessels] = rng.uniform(420.0, 560.0)
        img += np.abs(rng.normal(0.0, 12.0, shape)).astype(np.float32)
    elif modality == "3DRA":
        img = np.zeros(shape, dtype=np.float32)
        img[vessels] = 1000.0
        img += rng.normal(0.0, 15.0, shape).astype(np.float32)
    else:
        raise ValueError(f"unknown synthetic modality {modality!r}")
    img = ndimage.gaussian_filter(img, 0.5).astype(np.float32)
    return SynthVolume(img, lesions, affine, spacing, lesion_locations, arteries)
