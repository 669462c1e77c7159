"""A 3-D record's annotations on its image's canonical grid: the lesion label volume (masks as
drawn, points as balls, unknowns marked) and the artery labels with the territories they seed."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to
from scipy import ndimage

from ..errors import DataError
from ..io.volumes import Volume, load_nifti, load_nifti_image, nifti_to_canonical_voxel
from ..schema import ARTERIES, TERRITORIES, StudyRecord
from .render import LESION, UNKNOWN

#: Point annotations carry no extent: a ball this size (mm) is surely aneurysm, and the rim out to
#: ``_POINT_RIM_MM`` is unknown rather than background. ADAM's points give their own radius.
_LOCALIZER_RADIUS_MM = 1.5
_POINT_RIM_MM = 6.0


def _paint_ball(labels: np.ndarray, centre: np.ndarray, spacing: np.ndarray, radius_mm: float,
                rim_mm: float) -> None:
    """Mark a ball as ``LESION`` and the shell around it, where still background, ``UNKNOWN``."""
    reach = np.ceil(rim_mm / spacing).astype(int) + 1
    lo = np.maximum(np.floor(centre).astype(int) - reach, 0)
    hi = np.minimum(np.floor(centre).astype(int) + reach + 1, labels.shape)
    if np.any(lo >= hi):
        return
    grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing))
    box = labels[tuple(slice(a, b) for a, b in zip(lo, hi))]
    box[(d2 <= rim_mm**2) & (box == 0)] = UNKNOWN
    box[d2 <= max(radius_mm**2, float(d2.min()))] = LESION


def lesions(record: StudyRecord, volume: Volume
            ) -> tuple[list[tuple[np.ndarray, float]], np.ndarray]:
    """(canonical voxel centre, radius in voxels) of every annotated aneurysm, and a lesion label
    volume on the canonical grid: masks as drawn (ignored labels unknown), points as balls."""
    ref = record.volume
    out: list[tuple[np.ndarray, float]] = []
    labels = np.zeros(volume.data.shape, dtype=np.uint8)
    for mask_path in ref.lesion_masks:
        mask = load_nifti(mask_path).data.astype(np.int32)
        if mask.shape != volume.data.shape:
            raise DataError(mask_path, f"mask shape {mask.shape} differs from the image "
                                       f"{volume.data.shape}")
        for label in np.unique(mask[mask > 0]):
            if int(label) in ref.ignore_labels:
                labels[(mask == label) & (labels == 0)] = UNKNOWN
                continue
            labels[mask == label] = LESION
            parts, n = ndimage.label(mask == label)
            for k in range(1, n + 1):
                voxels = np.argwhere(parts == k)
                radius = (len(voxels) * 3 / (4 * np.pi)) ** (1 / 3)
                out.append((voxels.mean(axis=0), float(radius)))
    spacing = np.array(volume.spacing)
    if ref.points and not ref.lesion_masks:
        centres = nifti_to_canonical_voxel(ref.path, np.array(ref.points))
        for c, p in zip(centres, ref.points):
            out.append((c, float(p[3])))
            radius_mm = float(p[3]) * float(spacing.mean())
            _paint_ball(labels, c, spacing, radius_mm, radius_mm + _POINT_RIM_MM / 2)
    for sop, x, y, frame in ref.localizers:
        try:
            centre = volume.localizer_voxel(sop, x, y, frame)
        except KeyError:
            raise DataError(ref.path, f"localizer names instance {sop}, not in the series") \
                from None
        out.append((centre, float(_LOCALIZER_RADIUS_MM / spacing.mean())))
        _paint_ball(labels, centre, spacing, _LOCALIZER_RADIUS_MM, _POINT_RIM_MM)
    return out, labels


def arteries(record: StudyRecord, volume: Volume) -> tuple[np.ndarray, np.ndarray] | None:
    """Artery ids (1 + index into ``ARTERIES``, 0 none) and territory seeds (1 + index into
    ``TERRITORIES``, 0 none) on the image's canonical grid, or None without artery labels.

    The label file is resampled onto the image by their affines (nearest neighbour), so a
    segmentation stored in another orientation or grid still lands on its vessels.
    """
    ref = record.volume
    if not ref.arteries:
        return None
    img = load_nifti_image(ref.arteries)
    if img.ndim != 3:
        raise DataError(ref.arteries, f"expected a 3-D artery label volume, got {img.shape}")
    canonical = nib.as_closest_canonical(img)
    if canonical.shape == volume.data.shape and np.allclose(canonical.affine, volume.affine,
                                                            atol=1e-3):
        values = np.asarray(canonical.dataobj).astype(np.int32)
    else:
        values = np.asarray(resample_from_to(img, (volume.data.shape, volume.affine),
                                             order=0).dataobj).astype(np.int32)
    ids = np.zeros(values.shape, dtype=np.uint8)
    seeds = np.zeros(values.shape, dtype=np.uint8)
    for value, artery, territory in ref.artery_labels:
        where = values == value
        ids[where] = ARTERIES.index(artery) + 1
        if territory:
            seeds[where] = TERRITORIES.index(territory) + 1
    return ids, seeds
