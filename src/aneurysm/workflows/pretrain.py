"""Pretrain the multi-view model on pooled external sources.

Each source is split into train and validation by patient *before* pooling, so no source's
patient sits on both sides and every source is represented in validation. The checkpoint
carries its contract: backbone, image size, labels, preprocessing and projection parameters,
the sources with their case counts, and software versions.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

from ..config import ExperimentConfig, config_to_dict, read_run_config
from ..data.arrays import build_arrays, footprint_stride, image_caches
from ..data.distributed import barrier, init_from_env, main_first, rank_device, shard
from ..errors import AneurysmError
from ..io.atomic import atomic_write_text
from ..metrics import bootstrap_auroc
from ..model import build_model
from ..model.checkpoint import checkpoint_path, read_checkpoint, save_checkpoint
from ..model.predict import predict_arrays, resolve_device
from ..projection import is_canonical, project_records
from ..schema import StudyRecord, save_manifest
from ..training.loop import train_fold
from ..training.steps import check_step_config
from ..training.tracking import Trackers
from .run_dir import checkpoint_metadata, prepare_run, write_run_metadata

CHECKPOINT = "pretrained.safetensors"


def pretrained_checkpoint(run_dir: str | Path) -> Path:
    """A pretraining run's checkpoint: ``pretrained.safetensors``, or an older run's ``.pt``."""
    return checkpoint_path(run_dir, "pretrained")


@dataclass(frozen=True)
class SourceScore:
    source: str
    train: int
    val: int
    val_positive: int
    auroc: float
    low: float
    high: float


def holdout_split(records: list[StudyRecord], fraction: float, seed: int
                  ) -> tuple[list[StudyRecord], list[StudyRecord]]:
    """One patient-grouped, presence-stratified split of a single source."""
    if len({r.patient_id for r in records}) < 2:  # one patient cannot be on both sides
        return records, []
    k = max(2, int(round(1.0 / fraction)))
    k = min(k, len({r.patient_id for r in records}))
    strata = np.array([str(r.presence) for r in records])
    groups = np.array([r.patient_id for r in records])
    x = np.zeros(len(records))
    try:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class")
            train_idx, val_idx = next(splitter.split(x, strata, groups))
    except ValueError:  # too few cases per class to stratify: split by patient alone
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        train_idx, val_idx = next(splitter.split(x, strata, groups))
    return [records[i] for i in train_idx], [records[i] for i in val_idx]


def _identity(r: StudyRecord) -> int:
    """What a record keeps through projection: its volume (2-D records pass through as they are)."""
    return id(r.volume) if r.volume is not None else id(r)


def _fine_pixels(config: ExperimentConfig) -> int:
    """Rays per side of each view's second, finer cast: a second look reads its crops there,
    not from the first stage's views enlarged; 0 without one."""
    return config.preprocess.fine_size if config.model.second_look else 0


def _namespaced(r: StudyRecord) -> StudyRecord:
    """Study and patient ids unique across sources."""
    return r.relabel(study_id=f"{r.source}:{r.study_id}", patient_id=f"{r.source}:{r.patient_id}")


def pretrain(run_dir: str | Path, sources: dict[str, list[StudyRecord]],
             config: ExperimentConfig,
             val_fraction: float = 0.2, resume: bool = False, force: bool = False,
             skip_bad: bool = False, progress: bool = True,
             train_share: float = 1.0) -> list[SourceScore]:
    """``train_share`` < 1 trains on that share of each source's training patients and keeps
    the validation split as it is: a learning curve, to see whether more data would help."""
    run_dir = Path(run_dir)
    if not sources or not any(sources.values()):
        raise AneurysmError("no external cases to pretrain on (is --data-root right?)")
    world = init_from_env(config.train.device)  # under torchrun: join the group; rank 0 writes
    check_step_config(config.train)  # refuse impossible step settings before writing anything
    progress = progress and world.is_main
    counts = {s: len(r) for s, r in sources.items()}
    with main_first() as main:
        if main:
            prepare_run(run_dir, resume, force)
            if not resume:
                projection = config.projection.resolved(config.preprocess.image_size)
                write_run_metadata(run_dir, config, {
                    "sources": counts, "val_fraction": val_fraction, "train_share": train_share,
                    "projection": asdict(projection) | {"fine_pixels": _fine_pixels(config)},
                    "processes": world.world_size})
    if resume:
        config = read_run_config(run_dir)
    projection = config.projection.resolved(config.preprocess.image_size)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    # every source's volumes in one pool of workers (a small source would leave cores idle),
    # then back to their sources: a projected record keeps its VolumeRef
    owner = {_identity(r): name for name, records in sources.items() for r in records}
    everything = [r for _, records in sorted(sources.items()) for r in records]
    fine_pixels = _fine_pixels(config)
    if world.distributed:  # each rank renders its share into the one shared cache
        project_records(shard(everything), config.data.cache_dir, projection,
                        workers=config.data.workers or None, skip_bad=True, progress=progress,
                        fine_pixels=fine_pixels)
        barrier()
    projected = project_records(everything, config.data.cache_dir, projection,
                                workers=config.data.workers or None, skip_bad=skip_bad,
                                progress=progress, fine_pixels=fine_pixels)
    skipped = list(projected.skipped)
    by_source: dict[str, list[StudyRecord]] = {name: [] for name in sorted(sources)}
    for r in projected.records:
        by_source[owner[_identity(r)]].append(r)
    train_records, val_records, split_ids = [], [], {}
    for name, records in by_source.items():
        named = [_namespaced(r) for r in records]
        # split the canonical views; a volume's other poses follow it into training only
        tr, va = holdout_split([r for r in named if is_canonical(r)], val_fraction,
                               config.train.seed)
        if train_share < 1.0:
            patients = sorted({r.patient_id for r in tr})
            keep = set(patients[:max(1, round(len(patients) * train_share))])
            tr = [r for r in tr if r.patient_id in keep]
        patients = {r.patient_id for r in tr}
        tr += [r for r in named if not is_canonical(r) and r.patient_id in patients]
        train_records += tr
        val_records += va
        split_ids[name] = {"train": [r.study_id for r in tr], "val": [r.study_id for r in va]}
    splits_path = run_dir / "splits.json"
    if splits_path.is_file():
        saved = json.loads(splits_path.read_text())
        if saved != split_ids:
            raise AneurysmError(f"{splits_path}: the data changed since this run was split")
    elif world.is_main:
        atomic_write_text(splits_path, json.dumps(split_ids, indent=1))
    if world.is_main:
        save_manifest(train_records + val_records, run_dir / "records.json")

    cache, fine = image_caches(config.data.cache_dir, config.preprocess,
                               config.model.second_look)
    stride = footprint_stride(config.model.map_stride)
    arrays, bad_images, dropped = build_arrays(train_records + val_records, cache,
                                               skip_bad=skip_bad,
                                               workers=config.data.workers or None,
                                               progress=progress, shared=True,
                                               footprint_stride=stride, fine_cache=fine)
    index = {s: i for i, s in enumerate(arrays.study_ids)}
    val_ids = {r.study_id for r in val_records}
    train = arrays.subset([i for s, i in index.items() if s not in val_ids])
    val = arrays.subset([i for s, i in index.items() if s in val_ids])
    metadata = {**checkpoint_metadata(config), "projection": projection.cache_params(),
                "sources": counts}

    def make_model():
        torch.manual_seed(config.train.seed)
        return build_model(config.model)

    train_config = dataclasses.replace(config.train, epochs=config.train.pretrain_epochs,
                                       lr=config.train.pretrain_lr or config.train.lr)
    tracker = Trackers(config.train.track, run_dir, config_to_dict(config)) \
        if world.is_main else None
    try:
        train_fold(run_dir / "pretrain", 0, make_model, train, val, train_config,
                   config.augment, metadata, progress, config.loss, tracker, "pretrain")
        best = read_checkpoint(checkpoint_path(run_dir / "pretrain", "best"))
        model = make_model()
        model.load_state_dict(best["state_dict"])
        scores = _per_source(model, val, config, train)
        if tracker is not None:
            tracker.log_final({f"{s.source}/val_auroc": s.auroc for s in scores})
    finally:
        if tracker is not None:
            tracker.close()
    if world.is_main:
        save_checkpoint(run_dir / CHECKPOINT, model,
                        {**metadata, "epoch": best["metadata"]["epoch"]})
        atomic_write_text(run_dir / "pretrain_report.json", json.dumps({
            "per_source": [asdict(s) for s in scores], "skipped": skipped,
            "decisions": projected.decisions,
            "skipped_images": [b.path for b in bad_images], "dropped_studies": dropped,
            "checkpoint": str(run_dir / CHECKPOINT)}, indent=1))
        shutil.copyfile(run_dir / "pretrain" / "history.csv", run_dir / "history.csv")
    barrier()
    return scores


def _per_source(model, val, config: ExperimentConfig, train) -> list[SourceScore]:
    device = rank_device(resolve_device(config.train.device))
    model = model.to(device)
    probs, _, _ = predict_arrays(model, val, config.train.predict_options(), device)
    source = np.array([s.split(":", 1)[0] for s in val.study_ids])
    train_source = [s.split(":", 1)[0] for s in train.study_ids]
    scores = []
    for name in sorted(set(source) | set(train_source)):
        sel = (source == name) & val.presence_known
        ci = bootstrap_auroc(val.presence[sel].astype(int), probs[sel], n_boot=1000)
        scores.append(SourceScore(name, train_source.count(name), int((source == name).sum()),
                                  int(val.presence[sel].sum()), ci.value, ci.low, ci.high))
    return scores
