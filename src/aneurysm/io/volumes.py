"""3-D volumes in the canonical RAS+ voxel frame, and NIfTI files read into it (DICOM series:
``dicom_series``).

Every error names the file and says what is wrong: a truncated file, NaN voxels, a
non-invertible affine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import DataError


@dataclass(frozen=True, eq=False)
class Volume:
    data: np.ndarray  # float32, canonical RAS+ voxel order
    affine: np.ndarray  # canonical voxel -> RAS mm
    #: DICOM only: (SOPInstanceUID, frame) -> (column, row, slice) -> canonical voxel, as a map
    #: from each instance to the native (c, r, k) voxel it starts at; see ``localizer_voxel``.
    instances: dict[tuple[str, int], float] = field(default_factory=dict)
    native_to_canonical: np.ndarray | None = None  # 4x4, native (c, r, k) -> canonical voxel
    #: (file name, decision) for each choice the reader made: a DICOM file not read as a slice
    #: and why, a NIfTI's qform and sform that disagree and which one was used
    decisions: tuple[tuple[str, str], ...] = ()

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    def localizer_voxel(self, sop: str, x: float, y: float, frame: int) -> np.ndarray:
        """Canonical voxel of a per-instance pixel coordinate (x = column, y = row)."""
        key = (sop, frame if frame >= 0 else -1)
        if key not in self.instances or self.native_to_canonical is None:
            raise KeyError(f"instance {sop} frame {frame} is not in this series")
        k = self.instances[key]
        return (self.native_to_canonical @ np.array([x, y, k, 1.0]))[:3]


def check_affine(path: Path, affine: np.ndarray) -> None:
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-6:
        raise DataError(path, "affine is not invertible (zero or non-finite voxel axes)")


def load_nifti_image(path: str | Path) -> nib.Nifti1Image:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "NIfTI file not found")
    try:
        img = nib.load(str(path))
        _ = img.shape
    except Exception as exc:  # nibabel raises many kinds for a broken file
        raise DataError(path, f"not a readable NIfTI file ({exc.__class__.__name__}: {exc})") \
            from None
    check_affine(path, img.affine)
    return img


def affine_rule(img: nib.Nifti1Image) -> str:
    """Which of a NIfTI's two affines is used, where both are set and disagree ('' where not).

    The sform wins where its code is set, as the NIfTI standard and nibabel's ``affine``
    have it; the qform otherwise. A disagreement is named, because a tool that reads the other
    one puts every voxel elsewhere."""
    header = img.header
    s_code, q_code = int(header["sform_code"]), int(header["qform_code"])
    if not (s_code and q_code):
        return ""
    gap = float(np.abs(header.get_sform() - header.get_qform()).max())
    if gap < 1e-3:
        return ""
    return (f"qform and sform disagree (by up to {gap:.2f} in their matrices); used the sform "
            f"(code {s_code}), as the NIfTI standard does")


def load_nifti(path: str | Path) -> Volume:
    """A NIfTI volume (``.nii`` or ``.nii.gz``; stored integers scaled by scl_slope and
    scl_inter; a singleton fourth dimension dropped) in the canonical frame."""
    raw = load_nifti_image(path)
    rule = affine_rule(raw)
    img = nib.as_closest_canonical(raw)
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:
        raise DataError(path, f"unreadable voxel data ({exc})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(path, f"expected a 3-D volume, got shape {data.shape}")
    bad = int(data.size - np.isfinite(data).sum())
    if bad:
        raise DataError(path, f"{bad} voxel(s) are NaN or infinite")
    return Volume(data, img.affine, decisions=((Path(path).name, rule),) if rule else ())


def nifti_to_canonical_voxel(image_path: str | Path, points: np.ndarray) -> np.ndarray:
    """Map voxel coordinates of a NIfTI file's own grid to its canonical grid."""
    img = load_nifti_image(image_path)
    canonical = nib.as_closest_canonical(img)
    m = np.linalg.inv(canonical.affine) @ img.affine
    pts = np.c_[np.asarray(points, float)[:, :3], np.ones(len(points))]
    return (pts @ m.T)[:, :3]
