"""Read 3-D volumes (NIfTI files, DICOM series) into the canonical RAS+ voxel frame.

Every error names the file or series and says what is wrong: missing ImagePositionPatient,
mixed orientations, a missing slice, a non-invertible affine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import DataError


@dataclass(frozen=True, eq=False)
class Volume:
    data: np.ndarray  # float32, canonical RAS+ voxel order
    affine: np.ndarray  # canonical voxel -> RAS mm
    #: DICOM only: (SOPInstanceUID, frame) -> (column, row, slice) -> canonical voxel, as a map
    #: from each instance to the native (c, r, k) voxel it starts at; see ``localizer_voxel``.
    instances: dict[tuple[str, int], int] = field(default_factory=dict)
    native_to_canonical: np.ndarray | None = None  # 4x4, native (c, r, k) -> canonical voxel

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


def _check_affine(path: Path, affine: np.ndarray) -> None:
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
    _check_affine(path, img.affine)
    return img


def load_nifti(path: str | Path) -> Volume:
    img = nib.as_closest_canonical(load_nifti_image(path))
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
    return Volume(data, img.affine)


def nifti_to_canonical_voxel(image_path: str | Path, points: np.ndarray) -> np.ndarray:
    """Map voxel coordinates of a NIfTI file's own grid to its canonical grid."""
    img = load_nifti_image(image_path)
    canonical = nib.as_closest_canonical(img)
    m = np.linalg.inv(canonical.affine) @ img.affine
    pts = np.c_[np.asarray(points, float)[:, :3], np.ones(len(points))]
    return (pts @ m.T)[:, :3]


# --- DICOM ---------------------------------------------------------------------------------
def _frame_geometry(ds: pydicom.Dataset, folder: Path, name: str):
    """(positions per frame, orientation, pixel spacing) of one file, single- or multi-frame."""
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    orientation = getattr(ds, "ImageOrientationPatient", None)
    spacing = getattr(ds, "PixelSpacing", None)
    if shared is not None:
        if orientation is None and "PlaneOrientationSequence" in shared:
            orientation = shared.PlaneOrientationSequence[0].ImageOrientationPatient
        if spacing is None and "PixelMeasuresSequence" in shared:
            spacing = shared.PixelMeasuresSequence[0].PixelSpacing
    if n_frames > 1:
        if not per_frame or len(per_frame) != n_frames:
            raise DataError(folder, f"{name}: multi-frame file without per-frame positions")
        positions = []
        for f in per_frame:
            try:
                positions.append([float(v) for v in
                                  f.PlanePositionSequence[0].ImagePositionPatient])
            except (AttributeError, IndexError):
                raise DataError(folder, f"{name}: a frame lacks ImagePositionPatient") from None
    else:
        if "ImagePositionPatient" not in ds:
            raise DataError(folder, f"{name}: missing ImagePositionPatient")
        positions = [[float(v) for v in ds.ImagePositionPatient]]
    if orientation is None:
        raise DataError(folder, f"{name}: missing ImageOrientationPatient")
    if spacing is None:
        raise DataError(folder, f"{name}: missing PixelSpacing")
    return positions, np.array([float(v) for v in orientation]), [float(v) for v in spacing]


def _rescale(ds: pydicom.Dataset) -> tuple[float, float]:
    slope, intercept = getattr(ds, "RescaleSlope", None), getattr(ds, "RescaleIntercept", None)
    shared = ds.get("SharedFunctionalGroupsSequence")
    if (slope is None or intercept is None) and shared and \
            "PixelValueTransformationSequence" in shared[0]:
        t = shared[0].PixelValueTransformationSequence[0]
        slope, intercept = t.RescaleSlope, t.RescaleIntercept
    return float(slope if slope is not None else 1.0), float(intercept if intercept is not None
                                                             else 0.0)


def _read_dicom(path: Path) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path)
    except (InvalidDicomError, AttributeError, ValueError, OSError, EOFError) as exc:
        raise DataError(path, f"unreadable DICOM file ({exc.__class__.__name__})") from None


def _pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """The stored pixels as float32, with an error that says what is missing."""
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise DataError(path, "DICOM file has no pixel data")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        return ds.pixel_array.astype(np.float32)
    except (RuntimeError, NotImplementedError) as exc:
        if syntax is not None and syntax.is_compressed:
            raise DataError(path, f"pixel data is compressed ({syntax.name}) and no installed "
                                  "decoder handles it: install pylibjpeg with pylibjpeg-libjpeg "
                                  "and pylibjpeg-openjpeg, or python-gdcm") from None
        raise DataError(path, f"undecodable pixel data ({exc.__class__.__name__})") from None
    except (AttributeError, ValueError, KeyError) as exc:
        raise DataError(path, f"unreadable pixel data ({exc.__class__.__name__})") from None


def load_dicom_series(folder: str | Path) -> Volume:
    """Stack a series' slices in the order of their position along the slice normal."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "DICOM series folder not found")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise DataError(folder, "DICOM series folder is empty")
    slices = []  # (position, pixels, sop, frame)
    orientation0 = None
    spacing0 = None
    series0 = None
    for path in files:
        ds = _read_dicom(path)
        series = str(ds.get("SeriesInstanceUID", ""))
        if series0 is None:
            series0 = series
        elif series != series0:
            raise DataError(folder, f"two series in one folder ({path.name} belongs to "
                                    f"{series[-12:]}, the first file to {series0[-12:]})")
        pixels = _pixels(ds, path)
        positions, orientation, spacing = _frame_geometry(ds, folder, path.name)
        if orientation0 is None:
            orientation0, spacing0 = orientation, spacing
        elif not np.allclose(orientation, orientation0, atol=1e-3):
            raise DataError(folder, f"mixed slice orientations ({path.name} differs)")
        slope, intercept = _rescale(ds)
        pixels = pixels * slope + intercept
        frames = pixels if pixels.ndim == 3 else pixels[None]
        multi = len(positions) > 1
        for f, (pos, frame) in enumerate(zip(positions, frames)):
            slices.append((np.array(pos), frame, str(ds.SOPInstanceUID), f if multi else -1))
    row_dir, col_dir = orientation0[:3], orientation0[3:]
    normal = np.cross(row_dir, col_dir)
    slices.sort(key=lambda s: float(s[0] @ normal))
    shapes = {s[1].shape for s in slices}
    if len(shapes) > 1:
        raise DataError(folder, f"slices have different sizes {sorted(shapes)}")
    along = np.array([float(s[0] @ normal) for s in slices])
    if len(slices) > 1:
        gaps = np.diff(along)
        if gaps.min() <= 1e-6:
            raise DataError(folder, "slices share a position (duplicate slices)")
        step = float(gaps.min())  # the nominal spacing; any gap well above it lost slices
        if np.any(gaps > 1.5 * step):
            where = int(np.argmax(gaps > 1.5 * step))
            raise DataError(folder, f"missing slice(s) between positions {along[where]:.1f} and "
                                    f"{along[where + 1]:.1f} mm")
        if gaps.max() > 1.1 * step:  # stacking at one step would distort the anatomy
            raise DataError(folder, f"non-uniform slice spacing ({step:.2f} to "
                                    f"{float(gaps.max()):.2f} mm)")
    else:
        step = float(spacing0[0])
    data = np.stack([s[1] for s in slices]).transpose(2, 1, 0)  # (column, row, slice)
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_dir * spacing0[1]  # moving along a row = next column
    affine_lps[:3, 1] = col_dir * spacing0[0]
    affine_lps[:3, 2] = normal * step
    affine_lps[:3, 3] = slices[0][0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps  # LPS -> RAS
    _check_affine(folder, affine)
    native = nib.Nifti1Image(data, affine)
    canonical = nib.as_closest_canonical(native)
    to_canonical = np.linalg.inv(canonical.affine) @ affine
    instances = {(s[2], s[3]): k for k, s in enumerate(slices)}
    return Volume(np.asarray(canonical.dataobj, dtype=np.float32), canonical.affine, instances,
                  to_canonical)
