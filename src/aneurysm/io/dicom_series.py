"""Read a DICOM series folder as archives export it, into the canonical RAS+ voxel frame.

Real exports hold more than one stack of axial slices: a scout (localizer) image, derived
reformats or secondary captures, a second series, duplicate instances sent twice, a missing
slice, uneven slice positions. Each such file is set aside by its DICOM attributes and named
(``Volume.decisions``), and the largest consistent stack is read:

- localizers (ImageType LOCALIZER or SCOUT), secondary captures and files without pixels are
  set aside first;
- the rest is grouped by series, orientation and size, and the group with the most slices is
  kept; within it, DERIVED images are set aside where ORIGINAL ones exist;
- a second copy of an instance, or of a slice (same position, same pixels), is dropped;
  two different slices at one position are an error;
- uneven spacing is resampled to the commonest step; a gap of missing slices is refused, or
  filled by the same interpolation when ``gaps="fill"``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import DataError
from .volumes import Volume, check_affine

GAP_RULES = ("refuse", "fill")
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame kinds, .7.1-.7.4


@dataclass
class _Slice:
    position: np.ndarray
    pixels: np.ndarray
    sop: str
    frame: int  # -1 for a single-frame file
    file: str
    spacing: tuple[float, float]
    derived: bool


def _read_dicom(path: Path) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path)
    except (InvalidDicomError, AttributeError, ValueError, OSError, EOFError) as exc:
        raise DataError(path, f"unreadable DICOM file ({exc.__class__.__name__})") from None


def _image_type(ds: pydicom.Dataset) -> list[str]:
    value = ds.get("ImageType", [])
    return [str(v).upper() for v in ([value] if isinstance(value, str) else value)]


def not_a_slice(ds: pydicom.Dataset) -> str:
    """Why a file is no slice of the volume ('' if it may be one)."""
    kind = _image_type(ds)
    if "LOCALIZER" in kind or "SCOUT" in kind:
        return "localizer (ImageType " + "\\".join(kind) + ")"
    if str(ds.get("SOPClassUID", "")).startswith(_SECONDARY_CAPTURE):
        return "secondary capture"
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        return "no pixel data"
    return ""


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


def _pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """The stored pixels as float32, with an error that says what is missing."""
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


def _read_slices(folder: Path, files: list[Path], aside: list[tuple[str, str]]
                 ) -> dict[tuple, list[_Slice]]:
    """Every candidate slice, grouped by (series, orientation, size)."""
    groups: dict[tuple, list[_Slice]] = {}
    for path in files:
        ds = _read_dicom(path)
        reason = not_a_slice(ds)
        if reason:
            aside.append((path.name, reason))
            continue
        pixels = _pixels(ds, path)
        positions, orientation, spacing = _frame_geometry(ds, folder, path.name)
        slope, intercept = _rescale(ds)
        frames = pixels * slope + intercept
        frames = frames if frames.ndim == 3 else frames[None]
        key = (str(ds.get("SeriesInstanceUID", "")), tuple(np.round(orientation, 3)),
               frames.shape[1:])
        derived = (_image_type(ds) or ["ORIGINAL"])[0] == "DERIVED"
        multi = len(positions) > 1
        for f, (pos, frame) in enumerate(zip(positions, frames)):
            groups.setdefault(key, []).append(_Slice(
                np.array(pos), frame, str(ds.SOPInstanceUID), f if multi else -1, path.name,
                (spacing[0], spacing[1]), derived))
    return groups


def _choose(groups: dict[tuple, list[_Slice]], aside: list[tuple[str, str]], folder: Path
            ) -> tuple[tuple, list[_Slice]]:
    """The largest consistent stack; every other file is set aside, with what differs."""
    if not groups:
        raise DataError(folder, "no image slices in the folder"
                        + (f" ({len(aside)} file(s) set aside: {aside[0][0]}: {aside[0][1]}"
                           + (" ...)" if len(aside) > 1 else ")") if aside else ""))
    key = max(groups, key=lambda k: len(groups[k]))
    for other, slices in groups.items():
        if other == key:
            continue
        what = ("another series" if other[0] != key[0] else "another orientation"
                if other[1] != key[1] else f"another size {other[2]}")
        for name in sorted({s.file for s in slices}):
            aside.append((name, f"{what} than the {len(groups[key])}-slice stack read"))
    chosen = groups[key]
    if any(s.derived for s in chosen) and not all(s.derived for s in chosen):
        for name in sorted({s.file for s in chosen if s.derived}):
            aside.append((name, "derived image (ImageType DERIVED) beside original ones"))
        chosen = [s for s in chosen if not s.derived]
    return key, chosen


def _deduplicate(slices: list[_Slice], along: np.ndarray, aside: list[tuple[str, str]],
                 folder: Path) -> tuple[list[_Slice], np.ndarray]:
    """Slices sorted along the normal, each instance and each position once."""
    order = np.argsort(along, kind="stable")
    kept: list[_Slice] = []
    positions: list[float] = []
    seen: set[tuple[str, int]] = set()
    for i in order:
        s = slices[i]
        if (s.sop, s.frame) in seen:
            aside.append((s.file, "duplicate instance (SOPInstanceUID seen before)"))
            continue
        if positions and abs(along[i] - positions[-1]) < 1e-3:
            if np.array_equal(s.pixels, kept[-1].pixels):
                aside.append((s.file, f"duplicate slice at {along[i]:.1f} mm"))
                continue
            raise DataError(folder, f"two different slices at position {along[i]:.1f} mm "
                                    f"({kept[-1].file} and {s.file})")
        seen.add((s.sop, s.frame))
        kept.append(s)
        positions.append(float(along[i]))
    return kept, np.array(positions)


def _uniform(data: np.ndarray, along: np.ndarray, gaps: str, folder: Path
             ) -> tuple[np.ndarray, float, np.ndarray]:
    """(slices, step, each input slice's index in the output): resampled by linear
    interpolation to the commonest step (the smallest of equals) where positions are uneven
    or, with ``gaps='fill'``, where slices are missing."""
    steps = np.diff(along)
    rounded = np.round(steps, 2)
    counts = Counter(rounded.tolist())
    top = max(counts.values())
    nominal = min(v for v, c in counts.items() if c == top)  # the commonest step
    step = float(np.median(steps[rounded == nominal]))  # its exact value, not the rounded one
    if np.all(steps < 1.1 * step) and np.all(steps > step / 1.1):
        return data, step, np.arange(len(along), dtype=float)
    if np.any(steps > 1.5 * step) and gaps != "fill":
        where = int(np.argmax(steps > 1.5 * step))
        raise DataError(folder, f"missing slice(s) between positions {along[where]:.1f} and "
                                f"{along[where + 1]:.1f} mm; set projection.slice_gaps: fill "
                                "to interpolate them")
    grid = along[0] + step * np.arange(int(round((along[-1] - along[0]) / step)) + 1)
    upper = np.clip(np.searchsorted(along, grid, side="right"), 1, len(along) - 1)
    w = ((grid - along[upper - 1]) / (along[upper] - along[upper - 1])).clip(0, 1)
    out = (data[upper - 1] * (1 - w)[:, None, None] + data[upper] * w[:, None, None])
    return out.astype(np.float32), step, (along - along[0]) / step


def load_dicom_series(folder: str | Path, gaps: str = "refuse") -> Volume:
    """The largest consistent stack of a series folder, its slices in the order of their
    position along the slice normal; what was set aside is in ``Volume.decisions``."""
    folder = Path(folder)
    if gaps not in GAP_RULES:
        raise ValueError(f"slice gaps must be one of {GAP_RULES}, got {gaps!r}")
    if not folder.is_dir():
        raise DataError(folder, "DICOM series folder not found")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise DataError(folder, "DICOM series folder is empty")
    aside: list[tuple[str, str]] = []
    key, slices = _choose(_read_slices(folder, files, aside), aside, folder)
    orientation = np.array(key[1])
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    spacing = Counter(s.spacing for s in slices).most_common(1)[0][0]
    along = np.array([float(s.position @ normal) for s in slices])
    slices, along = _deduplicate(slices, along, aside, folder)
    stack = np.stack([s.pixels for s in slices])
    if len(slices) > 1:
        stack, step, index = _uniform(stack, along, gaps, folder)
    else:
        step, index = float(spacing[0]), np.zeros(1)
    data = stack.transpose(2, 1, 0)  # (column, row, slice)
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_dir * spacing[1]  # moving along a row = next column
    affine_lps[:3, 1] = col_dir * spacing[0]
    affine_lps[:3, 2] = normal * step
    affine_lps[:3, 3] = slices[0].position
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps  # LPS -> RAS
    check_affine(folder, affine)
    native = nib.Nifti1Image(data, affine)
    canonical = nib.as_closest_canonical(native)
    to_canonical = np.linalg.inv(canonical.affine) @ affine
    instances = {(s.sop, s.frame): float(k) for s, k in zip(slices, index)}
    return Volume(np.asarray(canonical.dataobj, dtype=np.float32), canonical.affine, instances,
                  to_canonical, tuple(sorted(aside)))
