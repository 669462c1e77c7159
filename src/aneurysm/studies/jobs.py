"""One run of a study, in whichever process it lands: train, score, write ``result.json``.

A job is plain data (``plan.Job``) so it can cross into a spawned process; everything heavy is
imported here, in the process that trains.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_text
from .plan import Job
from .spec import NEGATIVE_SOURCES


def execute(job: Job) -> dict:
    """Run ``job`` and write its result next to the run; returns it."""
    import torch

    from ..config import config_from_dict

    config = config_from_dict(job.config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    start = time.time()
    result = (_pretrain(job, config) if job.kind == "pretrain" else _finetune(job, config))
    result["metrics"]["minutes"] = (time.time() - start) / 60
    result.update(kind=job.kind, key=job.key, seed=job.seed, run=job.run_dir)
    atomic_write_text(job.result_path, json.dumps(result, indent=1))
    return result


def read_result(job: Job) -> dict | None:
    """The job's result if it finished before (a resumed or extended study), else None."""
    try:
        return json.loads(job.result_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _pretrain(job: Job, config) -> dict:
    """Pretraining's own task per source with negatives, the last epoch's training AUROC
    (under- or overfitting?) and where the map peaks."""
    import pandas as pd

    from ..sources import load_sources
    from ..workflows.pretrain import pretrain
    from .runs import localisation

    run = Path(job.run_dir)
    sources, _ = load_sources(["external"], job.data_root)
    scores = pretrain(run, sources, config, val_fraction=job.val_fraction, force=True,
                      progress=False, train_share=job.share)
    per_source = {s.source: s.auroc for s in scores if s.source in NEGATIVE_SOURCES}
    defined = [v for v in per_source.values() if not math.isnan(v)]
    history = pd.read_csv(run / "history.csv")
    metrics = {f"{s} val AUROC": per_source.get(s, math.nan) for s in NEGATIVE_SOURCES}
    metrics.update({"mean val AUROC": float(np.mean(defined)) if defined else math.nan,
                    "train AUROC, last epoch": float(history["train_auroc"].iloc[-1]),
                    "map peaks on the aneurysm": localisation(run)})
    return {"metrics": metrics, "details": {
        "val_cases": {s.source: [s.val, s.val_positive] for s in scores},
        "val_auroc_ci": {s.source: [s.low, s.high] for s in scores}}}


def _finetune(job: Job, config) -> dict:
    """Held-out K-ium (fold ensemble), pooled out-of-fold CV at the final epoch (no epoch
    chosen on validation) and the mean per-location AUROC on the held-out patients."""
    from ..evaluation.official import evaluate_files
    from ..evaluation.report import write_report
    from ..inference.predict import predict_run
    from ..registry import get_adapter
    from ..workflows.finetune import finetune
    from ..workflows.pretrain import pretrained_checkpoint
    from .draws import KIUM

    run, kium = Path(job.run_dir), Path(job.data_root) / KIUM
    adapter = get_adapter("kium")
    train, test = adapter.load(kium, "train"), adapter.load(kium, "test")
    init = str(pretrained_checkpoint(job.init)) if job.init else None
    finetune(run, train, config, folds=job.folds, init=init, force=True,
             splits_file=job.splits, progress=False)
    report = write_report(run)
    predict_run(run, test, run / "output_prob.csv", locations="prob", force=True,
                progress=False)
    held = evaluate_files(kium / "groundtruth.csv", run / "output_prob.csv")
    locations = [s.auroc for s in held.locations if not math.isnan(s.auroc)]
    return {"metrics": {
        "held-out AUROC": held.presence.value,
        "CV AUROC, final epoch": report.presence_last_epoch.value,
        "mean per-location AUROC, held-out": (float(np.mean(locations)) if locations
                                              else math.nan),
        # by the largest aneurysm's radius: the synthetic K-ium truth knows every size
        **{f"held-out AUROC, {s.label}": s.auroc.value for s in held.by_size}},
        "details": {"held_out_ci": [held.presence.low, held.presence.high],
                    "locations_defined": len(locations),
                    "positives_by_size": {s.label: s.positives for s in held.by_size}}}


def write_splits(job: Job) -> None:
    """The folds every fine-tuning arm of the job's seed shares, made once before any runs
    (arms run in parallel, so none can wait for the first arm's)."""
    from ..data.folds import make_folds, save_folds
    from ..registry import get_adapter
    from .draws import KIUM

    if job.splits is None or Path(job.splits).is_file():
        return
    seed = job.config["train"]["seed"]
    records = get_adapter("kium").load(Path(job.data_root) / KIUM, "train")
    save_folds(make_folds(records, job.folds, seed), job.splits, seed)
