"""Project 3-D study records into 2-D view records, cached by content and parameters.

The output is ordinary PNG views on disk, named as K-ium's eight, so everything downstream
(preprocessing cache, arrays, model) treats an external study exactly like a K-ium patient. A
view whose injection fills nothing in the volume (a 3DRA of one artery) is absent.
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
from tqdm import tqdm

from ..errors import DataError
from ..io.atomic import atomic_write_text
from ..io.hashing import file_sha256, params_hash
from ..io.images import write_image
from ..io.dicom_series import load_dicom_series
from ..io.volumes import load_nifti
from ..schema import KIUM_VIEW_NAMES, StudyRecord, ViewImage
from . import annotations
from .config import ProjectionConfig
from .render import project_volume


#: a projection folder's record of what reading its volume decided, [[file, decision], ...]:
#: DICOM files set aside (a localizer, a duplicate...), a NIfTI's qform/sform rule
DECISIONS = "decisions.json"


@dataclass
class ProjectedSet:
    records: list[StudyRecord]
    skipped: list[str] = field(default_factory=list)  # "path: problem", under --skip-bad
    #: "volume path/file: decision" for each reading decision (a DICOM file set aside...)
    decisions: list[str] = field(default_factory=list)


def _input_files(record: StudyRecord) -> list[Path]:
    vol = record.volume
    assert vol is not None
    files = sorted(Path(vol.path).iterdir()) if vol.kind == "dicom" else [Path(vol.path)]
    return files + [Path(m) for m in vol.lesion_masks] + ([Path(vol.arteries)]
                                                          if vol.arteries else [])


def content_key(record: StudyRecord, params: str) -> str:
    h = hashlib.sha256()
    for path in _input_files(record):
        if not path.is_file():
            raise DataError(path, "file not found")
        h.update(file_sha256(path).encode())
    h.update(record.modality.encode())
    h.update(json.dumps([record.volume.points, record.volume.localizers,
                         record.volume.ignore_labels, record.volume.artery_labels]).encode())
    h.update(params.encode())
    return h.hexdigest()[:32]


def _single_thread() -> None:
    """One torch thread per worker process: the pool already fills the cores."""
    import torch

    torch.set_num_threads(1)


#: Study ids of a volume's other poses end in this and the pose's number; they keep the patient id.
POSE_MARK = "#pose"


def is_canonical(record: StudyRecord) -> bool:
    """False for the extra C-arm poses of a projected volume: training data, never scored."""
    return POSE_MARK not in record.study_id


def pose_angles(key: str, pose: int, jitter_deg: float) -> tuple[float, float]:
    """The (turn, tilt) of a volume's pose, in degrees: none for pose 0, else drawn uniformly
    within +-``jitter_deg`` from the volume's content key, so a pose renders the same anywhere."""
    if pose == 0 or jitter_deg == 0:
        return 0.0, 0.0
    rng = np.random.default_rng([int(key[:12], 16), pose])
    turn, tilt = rng.uniform(-jitter_deg, jitter_deg, 2)
    return round(float(turn), 1), round(float(tilt), 1)


def _pose_jobs(record: StudyRecord, folder: str, config: ProjectionConfig, fine_pixels: int
               ) -> list[tuple]:
    """One rendering job per pose: (record, folder, config, angles, fine pixels); pose k > 0 in
    a folder beside the canonical one, named by its angles."""
    jobs = [(record, folder, config, (0.0, 0.0), fine_pixels)]
    for k in range(1, config.poses):
        turn, tilt = pose_angles(Path(folder).name, k, config.pose_jitter_deg)
        jobs.append((record, f"{folder}.turn{turn:+.1f}.tilt{tilt:+.1f}", config, (turn, tilt),
                     fine_pixels))
    return jobs


def _project_one(args: tuple[StudyRecord, str, ProjectionConfig, tuple[float, float], int]
                 ) -> tuple[str, str]:
    """Render one record at one pose into ``folder``; returns (folder, error)."""
    record, folder, config, pose, fine_pixels = args
    target = Path(folder)
    if (target / "positions.json").is_file():
        return folder, ""
    try:
        ref = record.volume
        volume = (load_dicom_series(ref.path, config.slice_gaps) if ref.kind == "dicom"
                  else load_nifti(ref.path))
        centres, labels = annotations.lesions(record, volume)
        artery_ids, seeds = annotations.arteries(record, volume) or (None, None)
        out = project_volume(volume.data, volume.spacing, record.modality, config, centres,
                             labels, artery_ids, seeds, pose, fine_pixels=fine_pixels)
    except DataError as exc:
        return folder, str(exc)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".proj.", dir=target.parent))
    try:
        for name, image in out.views.items():
            if image is None:
                continue
            write_image(tmp / f"{name}.png", image)
            write_image(footprint_path(tmp / f"{name}.png"), out.footprints[name])
            if ref.arteries:
                write_image(artery_path(tmp / f"{name}.png"), out.arteries[name])
            if name in out.fine:
                write_image(fine_path(tmp / f"{name}.png", fine_pixels), out.fine[name])
        if volume.decisions:
            (tmp / DECISIONS).write_text(json.dumps(volume.decisions))
        (tmp / "positions.json").write_text(json.dumps(out.positions))
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race: its result is the same
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder, ""


def project_records(records: list[StudyRecord], cache_dir: str | Path,
                    config: ProjectionConfig = ProjectionConfig(), workers: int | None = None,
                    skip_bad: bool = False, progress: bool = True, fine_pixels: int = 0
                    ) -> ProjectedSet:
    """2-D view records for 3-D ones (records with views already pass through unchanged).

    With ``config.poses`` = P > 1 each volume gives P records: the canonical views, then P - 1
    poses at other angulations, with study ids ending in ``POSE_MARK`` and the same patient id
    (so a patient-level split keeps a volume's poses together). ``fine_pixels`` > 0 also casts
    each view with that many rays per side (``fine_path``), from a grid as fine as the volume
    allows (``render.fine_spacing``); such projections have a cache folder of their own."""
    key = config.cache_params() | ({"fine_pixels": fine_pixels} if fine_pixels else {})
    params = params_hash(key)
    base = Path(cache_dir).expanduser() / "projections" / params
    base.mkdir(parents=True, exist_ok=True)
    atomic_write_text(base / "params.json", json.dumps(key, indent=1))
    jobs, result = [], ProjectedSet([])
    for r in records:
        if r.volume is None:
            continue
        try:
            jobs += _pose_jobs(r, str(base / content_key(r, params)), config, fine_pixels)
        except DataError as exc:
            if not skip_bad:
                raise
            result.skipped.append(str(exc))
    outcome = {j[1]: (j[1], "") for j in jobs if (Path(j[1]) / "positions.json").is_file()}
    todo = [j for j in jobs if j[1] not in outcome]
    bar = dict(total=len(todo), desc="project 3-D", unit="view set", disable=not progress)
    if workers == 1 or len(todo) < 3:
        outcomes = [_project_one(j) for j in tqdm(todo, **bar)]
    else:
        # One torch thread per worker: a child forked after the parent ran torch's OpenMP pool
        # hangs in its first parallel region (the renderer's grid_sample); a single thread
        # never enters one. (Spawning would also do, but would re-run a user's unguarded script.)
        with ProcessPoolExecutor(max_workers=workers, initializer=_single_thread) as pool:
            outcomes = list(tqdm(pool.map(_project_one, todo), **bar))
    outcome |= {job[1]: done for job, done in zip(todo, outcomes)}
    poses: dict[int, list[str]] = {}
    for job in jobs:
        poses.setdefault(id(job[0]), []).append(job[1])
    for r in records:
        if r.volume is None:
            result.records.append(r)
            continue
        if id(r) not in poses:
            continue  # its input files were already reported missing
        for k, folder in enumerate(poses[id(r)]):
            error = outcome[folder][1]
            paths = [Path(folder) / f"{n}.png" for n in KIUM_VIEW_NAMES]
            views = tuple(ViewImage(n, str(p) if p.is_file() else None)
                          for n, p in zip(KIUM_VIEW_NAMES, paths))
            if not error and not any(v.present for v in views):
                error = f"{r.volume.path}: no vessels to project"
            if error:
                if k:  # the canonical pose has said it
                    continue
                if not skip_bad:
                    raise DataError(r.volume.path, error.split(": ", 1)[-1])
                result.skipped.append(error)
                break
            if k == 0 and (Path(folder) / DECISIONS).is_file():
                result.decisions += [f"{Path(r.volume.path) / name}: {reason}" for name, reason
                                     in json.loads((Path(folder) / DECISIONS).read_text())]
            posed = r if k == 0 else r.relabel(study_id=f"{r.study_id}{POSE_MARK}{k}")
            result.records.append(posed.with_views(views))
    return result


def read_positions(record: StudyRecord) -> list[dict]:
    """Projected aneurysm positions of a projected record (empty for other records)."""
    first = next((v.path for v in record.views if v.path), None)
    if record.volume is None or not first:
        return []
    path = Path(first).parent / "positions.json"
    return json.loads(path.read_text()) if path.is_file() else []


def footprint_path(view_path: str | Path) -> Path:
    """Where the projection stage stores the footprint of the view image at ``view_path``."""
    view_path = Path(view_path)
    return view_path.with_name(view_path.stem + ".footprint.png")


def fine_path(view_path: str | Path, pixels: int) -> Path:
    """Where the projection stage stores the view at ``view_path`` cast with ``pixels`` rays."""
    view_path = Path(view_path)
    return view_path.with_name(f"{view_path.stem}.fine{pixels}.png")


def artery_path(view_path: str | Path) -> Path:
    """Where the projection stage stores the artery map of the view image at ``view_path``."""
    view_path = Path(view_path)
    return view_path.with_name(view_path.stem + ".arteries.png")
