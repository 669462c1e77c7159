"""Project 3-D study records into 2-D view records, cached by content and parameters.

The output is ordinary PNG views on disk, so everything downstream (preprocessing cache, arrays,
model) treats an external study exactly like a K-ium patient: only the view types differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from ..errors import DataError
from ..io.hashing import file_sha256, params_hash
from ..io.volumes import Volume, load_dicom_series, load_nifti, nifti_to_canonical_voxel
from ..schema import PROJECTION_VIEW_NAMES, StudyRecord, ViewImage
from .render import LESION, UNKNOWN, ProjectionConfig, project_volume


@dataclass
class ProjectedSet:
    records: list[StudyRecord]
    skipped: list[str] = field(default_factory=list)  # "path: problem", under --skip-bad


def _input_files(record: StudyRecord) -> list[Path]:
    vol = record.volume
    assert vol is not None
    files = sorted(Path(vol.path).iterdir()) if vol.kind == "dicom" else [Path(vol.path)]
    return files + [Path(m) for m in vol.lesion_masks]


def content_key(record: StudyRecord, params: str) -> str:
    h = hashlib.sha256()
    for path in _input_files(record):
        if not path.is_file():
            raise DataError(path, "file not found")
        h.update(file_sha256(path).encode())
    h.update(record.modality.encode())
    h.update(json.dumps([record.volume.points, record.volume.localizers,
                         record.volume.ignore_labels]).encode())
    h.update(params.encode())
    return h.hexdigest()[:32]


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


def _lesions(record: StudyRecord, volume: Volume
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


def _project_one(args: tuple[StudyRecord, str, ProjectionConfig]) -> tuple[str, str]:
    """Render one record into ``folder``; returns (folder, error)."""
    record, folder, config = args
    target = Path(folder)
    if (target / "positions.json").is_file():
        return folder, ""
    try:
        ref = record.volume
        volume = load_dicom_series(ref.path) if ref.kind == "dicom" else load_nifti(ref.path)
        lesions, labels = _lesions(record, volume)
        views, positions, footprints = project_volume(volume.data, volume.spacing,
                                                      record.modality, config, lesions, labels)
    except DataError as exc:
        return folder, str(exc)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".proj.", dir=target.parent))
    try:
        for name, image in views.items():
            Image.fromarray(image).save(tmp / f"{name}.png")
        for name, image in footprints.items():
            Image.fromarray(image).save(footprint_path(tmp / f"{name}.png"))
        (tmp / "positions.json").write_text(json.dumps(positions))
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race: its result is the same
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder, ""


def project_records(records: list[StudyRecord], cache_dir: str | Path,
                    config: ProjectionConfig = ProjectionConfig(), workers: int | None = None,
                    skip_bad: bool = False, progress: bool = True) -> ProjectedSet:
    """2-D view records for 3-D ones (records with views already pass through unchanged)."""
    params = params_hash(config.cache_params())
    base = Path(cache_dir).expanduser() / "projections" / params
    base.mkdir(parents=True, exist_ok=True)
    (base / "params.json").write_text(json.dumps(config.cache_params(), indent=1))
    jobs, result = [], ProjectedSet([])
    for r in records:
        if r.volume is None:
            continue
        try:
            jobs.append((r, str(base / content_key(r, params)), config))
        except DataError as exc:
            if not skip_bad:
                raise
            result.skipped.append(str(exc))
    bar = dict(total=len(jobs), desc="project 3-D", unit="volume", disable=not progress)
    if workers == 1 or len(jobs) < 3:
        outcomes = [_project_one(j) for j in tqdm(jobs, **bar)]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(tqdm(pool.map(_project_one, jobs), **bar))
    folders = {id(job[0]): outcome for job, outcome in zip(jobs, outcomes)}
    for r in records:
        if r.volume is None:
            result.records.append(r)
            continue
        if id(r) not in folders:
            continue  # its input files were already reported missing
        folder, error = folders[id(r)]
        if error:
            if not skip_bad:
                raise DataError(r.volume.path, error.split(": ", 1)[-1])
            result.skipped.append(error)
            continue
        views = tuple(ViewImage(n, str(Path(folder) / f"{n}.png")) for n in PROJECTION_VIEW_NAMES)
        result.records.append(r.with_views(views))
    return result


def read_positions(record: StudyRecord) -> list[dict]:
    """Projected aneurysm positions of a projected record (empty for other records)."""
    first = record.views[0].path if record.views else None
    if not first:
        return []
    path = Path(first).parent / "positions.json"
    return json.loads(path.read_text()) if path.is_file() else []


def footprint_path(view_path: str | Path) -> Path:
    """Where the projection stage stores the footprint of the view image at ``view_path``."""
    view_path = Path(view_path)
    return view_path.with_name(view_path.stem + ".footprint.png")
