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
from ..io.volumes import load_dicom_series, load_nifti
from ..schema import KIUM_VIEW_NAMES, StudyRecord, ViewImage
from . import annotations
from .render import ProjectionConfig, project_volume


@dataclass
class ProjectedSet:
    records: list[StudyRecord]
    skipped: list[str] = field(default_factory=list)  # "path: problem", under --skip-bad


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


def _project_one(args: tuple[StudyRecord, str, ProjectionConfig]) -> tuple[str, str]:
    """Render one record into ``folder``; returns (folder, error)."""
    record, folder, config = args
    target = Path(folder)
    if (target / "positions.json").is_file():
        return folder, ""
    try:
        ref = record.volume
        volume = load_dicom_series(ref.path) if ref.kind == "dicom" else load_nifti(ref.path)
        centres, labels = annotations.lesions(record, volume)
        artery_ids, seeds = annotations.arteries(record, volume) or (None, None)
        out = project_volume(volume.data, volume.spacing, record.modality, config, centres,
                             labels, artery_ids, seeds)
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
                    skip_bad: bool = False, progress: bool = True) -> ProjectedSet:
    """2-D view records for 3-D ones (records with views already pass through unchanged)."""
    params = params_hash(config.cache_params())
    base = Path(cache_dir).expanduser() / "projections" / params
    base.mkdir(parents=True, exist_ok=True)
    atomic_write_text(base / "params.json", json.dumps(config.cache_params(), indent=1))
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
    done = {id(j[0]): (j[1], "") for j in jobs if (Path(j[1]) / "positions.json").is_file()}
    jobs = [j for j in jobs if id(j[0]) not in done]
    bar = dict(total=len(jobs), desc="project 3-D", unit="volume", disable=not progress)
    if workers == 1 or len(jobs) < 3:
        outcomes = [_project_one(j) for j in tqdm(jobs, **bar)]
    else:
        # One torch thread per worker: a child forked after the parent ran torch's OpenMP pool
        # hangs in its first parallel region (the renderer's grid_sample); a single thread
        # never enters one. (Spawning would also do, but would re-run a user's unguarded script.)
        with ProcessPoolExecutor(max_workers=workers, initializer=_single_thread) as pool:
            outcomes = list(tqdm(pool.map(_project_one, jobs), **bar))
    folders = done | {id(job[0]): outcome for job, outcome in zip(jobs, outcomes)}
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
        paths = [Path(folder) / f"{n}.png" for n in KIUM_VIEW_NAMES]
        views = tuple(ViewImage(n, str(p) if p.is_file() else None)
                      for n, p in zip(KIUM_VIEW_NAMES, paths))
        if not any(v.present for v in views):
            message = f"{r.volume.path}: no vessels to project"
            if not skip_bad:
                raise DataError(r.volume.path, "no vessels to project")
            result.skipped.append(message)
            continue
        result.records.append(r.with_views(views))
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


def artery_path(view_path: str | Path) -> Path:
    """Where the projection stage stores the artery map of the view image at ``view_path``."""
    view_path = Path(view_path)
    return view_path.with_name(view_path.stem + ".arteries.png")
