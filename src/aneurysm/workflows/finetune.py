"""Patient-level cross-validated fine-tuning on the challenge set."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import ExperimentConfig, config_to_dict, read_run_config
from ..data.arrays import build_arrays, footprint_stride, image_caches
from ..data.distributed import barrier, init_from_env, main_first
from ..data.folds import load_folds, make_folds, save_folds
from ..io.atomic import atomic_write_text
from ..metrics import accuracy_thresholds, safe_auroc
from ..model import build_model
from ..model.checkpoint import load_init
from ..schema import LOCATION_NAMES, StudyRecord, save_manifest
from ..training.loop import FoldResult, train_fold
from ..training.steps import check_step_config
from ..training.tracking import Trackers
from .run_dir import checkpoint_metadata, prepare_run, write_run_metadata


def finetune(run_dir: str | Path, records: list[StudyRecord], config: ExperimentConfig,
             folds: int = 5, init: str | None = None, resume: bool = False, force: bool = False,
             splits_file: str | None = None, skip_bad: bool = False,
             progress: bool = True) -> list[FoldResult]:
    run_dir = Path(run_dir)
    world = init_from_env(config.train.device)  # under torchrun: join the group; rank 0 writes
    check_step_config(config.train)  # refuse impossible step settings before writing anything
    progress = progress and world.is_main
    with main_first() as main:
        if main:
            prepare_run(run_dir, resume, force)
            if not resume:
                write_run_metadata(run_dir, config, {"init": init, "folds": folds,
                                                     "studies": len(records),
                                                     "processes": world.world_size})
    if resume:
        config = read_run_config(run_dir)  # the run's own settings, not today's defaults
        meta = json.loads((run_dir / "meta.json").read_text())
        init = meta.get("init") or None
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    labelled = [r for r in records if r.is_labelled]
    cache, fine = image_caches(config.data.cache_dir, config.preprocess,
                               config.model.second_look)
    stride = footprint_stride(config.model.map_stride)
    arrays, skipped, dropped = build_arrays(labelled, cache, skip_bad=skip_bad,
                                            workers=config.data.workers or None,
                                            progress=progress, shared=True,
                                            footprint_stride=stride, fine_cache=fine)
    kept = [r for r in labelled if r.study_id not in set(dropped)]
    splits_path = run_dir / "splits.json"
    with main_first() as main:
        if main:
            save_manifest(kept, run_dir / "records.json")
            atomic_write_text(run_dir / "data_issues.json", json.dumps({
                "skipped_images": [asdict(s) for s in skipped], "dropped_studies": dropped},
                indent=1))
            if not splits_path.is_file():
                if splits_file:
                    load_folds(splits_file, kept)  # refused here, before it is copied
                    shutil.copyfile(splits_file, splits_path)
                else:
                    save_folds(make_folds(kept, folds, config.train.seed), splits_path,
                               config.train.seed)
    fold_list = load_folds(splits_path, kept)

    metadata = checkpoint_metadata(config)

    def make_model():
        torch.manual_seed(config.train.seed)
        model = build_model(config.model)
        if init:
            load_init(model, init, {"model": config.model.architecture(),
                                    "image_size": config.preprocess.image_size})
        return model

    index = {sid: i for i, sid in enumerate(arrays.study_ids)}
    results = []
    tracker = Trackers(config.train.track, run_dir, config_to_dict(config)) \
        if world.is_main else None
    try:
        for k, fold in enumerate(fold_list):
            fold_dir = run_dir / f"fold_{k}"
            summary = fold_dir / "summary.json"
            if summary.is_file():
                results.append(FoldResult(**json.loads(summary.read_text())))
                continue
            train = arrays.subset([index[s] for s in fold.train])
            val = arrays.subset([index[s] for s in fold.val])
            results.append(train_fold(fold_dir, k, make_model, train, val, config.train,
                                      config.augment, metadata, progress, config.loss,
                                      tracker))
        if world.is_main:
            oof = combine_out_of_fold(run_dir, len(fold_list))
            tracker.log_final(final_figures(results, oof))
    finally:
        if tracker is not None:
            tracker.close()
    barrier()
    return results


def final_figures(results: list[FoldResult], oof: pd.DataFrame) -> dict[str, float]:
    """What a tracker gets once the folds are done: the pooled out-of-fold AUROC (kept and
    final epochs) and each fold's kept epoch and its validation AUROC."""
    known = oof[~oof["presence_true"].isna()]
    y = known["presence_true"].to_numpy(int)
    figures = {"cv_auroc": safe_auroc(y, known["presence_prob"].to_numpy())}
    if "presence_prob_last_epoch" in known:
        figures["cv_auroc_final_epoch"] = safe_auroc(
            y, known["presence_prob_last_epoch"].to_numpy())
    for r in results:
        figures[f"fold_{r.fold}/best_epoch"] = float(r.best_epoch)
        figures[f"fold_{r.fold}/val_auroc"] = r.val_auroc
    return figures


def combine_out_of_fold(run_dir: Path, n_folds: int) -> pd.DataFrame:
    """Pool the folds' OOF predictions and choose location thresholds on them."""
    oof = pd.concat([pd.read_csv(run_dir / f"fold_{k}" / "oof.csv", dtype={"study_id": str,
                                                                            "patient_id": str})
                     for k in range(n_folds)], ignore_index=True)
    atomic_write_text(run_dir / "oof.csv", oof.to_csv(index=False))
    truth = oof[[f"{n}_true" for n in LOCATION_NAMES]].to_numpy()
    probs = oof[[f"{n}_prob" for n in LOCATION_NAMES]].to_numpy()
    known = ~np.isnan(truth).any(axis=1)
    cuts = accuracy_thresholds(truth[known], probs[known])
    atomic_write_text(run_dir / "thresholds.json", json.dumps({
        "rule": "per location, the cut on pooled out-of-fold probabilities that maximises the "
                "official location accuracy",
        "thresholds": dict(zip(LOCATION_NAMES, cuts))}, indent=1))
    return oof
