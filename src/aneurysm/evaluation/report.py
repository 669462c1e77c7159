"""``aneurysm report RUN``: everything a reviewer asks of a cross-validated run, regenerated from
the run folder alone."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import AneurysmError
from ..io.atomic import atomic_write_text
from ..metrics import (
    Interval,
    LocationScore,
    bootstrap_auroc,
    brier,
    official_scores,
    per_location,
    safe_auroc,
)
from ..schema import LOCATION_NAMES
from .plots import plot_learning_curves, plot_reliability, plot_roc


@dataclass(frozen=True)
class FoldLine:
    fold: int
    n_val: int
    best_epoch: int
    train_auroc: float
    val_auroc: float

    @property
    def gap(self) -> float:
        return self.train_auroc - self.val_auroc


@dataclass(frozen=True)
class RunReport:
    run: str
    n_studies: int
    n_positive: int
    presence: Interval
    presence_last_epoch: Interval  # no epoch selection on the validation fold
    fold_mean: float
    fold_sd: float
    folds: list[FoldLine]
    locations: list[LocationScore]
    official: dict[str, float]
    brier: float
    select_on: str
    skipped_images: int
    dropped_studies: int

    @property
    def mean_gap(self) -> float:
        return float(np.nanmean([f.gap for f in self.folds]))


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def build_report(run_dir: str | Path, n_boot: int = 2000) -> RunReport:
    run_dir = Path(run_dir)
    oof_path = run_dir / "oof.csv"
    if not oof_path.is_file():
        raise AneurysmError(f"{run_dir}: no oof.csv; is this a finished finetune run?")
    oof = pd.read_csv(oof_path, dtype={"study_id": str})
    oof = oof[~oof["presence_true"].isna()]
    y, p = oof["presence_true"].to_numpy(int), oof["presence_prob"].to_numpy()
    truth = oof[[f"{n}_true" for n in LOCATION_NAMES]].to_numpy()
    probs = oof[[f"{n}_prob" for n in LOCATION_NAMES]].to_numpy()
    thresholds = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
    cuts = np.array([thresholds[n] for n in LOCATION_NAMES])
    known = ~np.isnan(truth).any(axis=1)
    folds = []
    for summary in sorted(run_dir.glob("fold_*/summary.json"),
                          key=lambda s: int(s.parent.name.split("_")[1])):
        s = json.loads(summary.read_text())
        part = oof[oof["fold"] == s["fold"]]
        folds.append(FoldLine(s["fold"], len(part), s["best_epoch"], s["train_auroc"],
                              safe_auroc(part["presence_true"], part["presence_prob"])))
    per_fold = [f.val_auroc for f in folds if not math.isnan(f.val_auroc)]
    issues_path = run_dir / "data_issues.json"
    issues = json.loads(issues_path.read_text()) if issues_path.is_file() else {}
    select_on = folds and json.loads((run_dir / "fold_0" / "summary.json").read_text()).get(
        "select_on", "val_loss") or "val_loss"
    return RunReport(
        run=str(run_dir), n_studies=len(oof), n_positive=int(y.sum()),
        presence=bootstrap_auroc(y, p, n_boot=n_boot),
        presence_last_epoch=bootstrap_auroc(y, oof["presence_prob_last_epoch"].to_numpy(),
                                            n_boot=n_boot)
        if "presence_prob_last_epoch" in oof else Interval(math.nan, math.nan, math.nan),
        fold_mean=float(np.mean(per_fold)) if per_fold else math.nan,
        fold_sd=float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else math.nan,
        folds=folds,
        locations=per_location(truth[known], probs[known]),
        official=official_scores(y[known], p[known], truth[known],
                                 (probs[known] >= cuts).astype(float)),
        brier=brier(y, p), select_on=select_on,
        skipped_images=len(issues.get("skipped_images", [])),
        dropped_studies=len(issues.get("dropped_studies", [])),
    )


def _markdown(r: RunReport) -> str:
    lines = [
        f"# Cross-validated report: `{r.run}`", "",
        f"{r.n_studies} studies ({r.n_positive} positive), {len(r.folds)} patient-level folds. "
        f"Each fold keeps the epoch with the best {r.select_on}.", "",
        "## Presence", "",
        f"- Pooled out-of-fold AUROC: **{r.presence}** (95% bootstrap CI)",
        f"- Same, final epoch of every fold (no epoch chosen on validation): "
        f"{r.presence_last_epoch}. A kept-epoch figure well above this one is flattered by "
        "selection on the validation fold.",
        f"- Per fold: {_fmt(r.fold_mean)} ± {_fmt(r.fold_sd)} (mean ± sd)",
        f"- Brier score: {_fmt(r.brier)} (see reliability.png)", "",
        "## Overfitting: train vs validation AUROC per fold", "",
        "| fold | validation studies | kept epoch | train AUROC | validation AUROC | gap |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {f.fold} | {f.n_val} | {f.best_epoch} | {_fmt(f.train_auroc)} | "
              f"{_fmt(f.val_auroc)} | {_fmt(f.gap)} |" for f in r.folds]
    lines += [f"| mean | | | | | {_fmt(r.mean_gap)} |", "",
              "## Official K-ium metrics on the out-of-fold predictions", "",
              "| metric | value | all-zeros baseline |", "|---|---|---|",
              f"| presence AUROC | {_fmt(r.official['auroc'])} | 0.500 |",
              f"| location accuracy | {_fmt(r.official['location_accuracy'])} | "
              f"{_fmt(r.official['location_accuracy_all_zeros'])} |", "",
              "Location accuracy rewards predicting zeros; per-location AUROC/AP below are the "
              "real measure of localisation.", "",
              "## Per location", "", "| location | positives | AUROC | AP |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {s.positives} | {_fmt(s.auroc)} | {_fmt(s.average_precision)} |"
              for s in r.locations]
    lines += ["", "n/a: fewer than 2 positives.", ""]
    if r.skipped_images or r.dropped_studies:
        lines += [f"**Data skipped with --skip-bad:** {r.skipped_images} image(s), "
                  f"{r.dropped_studies} study(ies) (see data_issues.json).", ""]
    lines += ["Plots: roc.png, learning_curves.png, reliability.png.", ""]
    return "\n".join(lines)


def write_report(run_dir: str | Path, n_boot: int = 2000) -> RunReport:
    run_dir = Path(run_dir)
    report = build_report(run_dir, n_boot)
    payload = asdict(report)
    payload["presence"] = asdict(report.presence)
    payload["presence_last_epoch"] = asdict(report.presence_last_epoch)
    payload["mean_gap"] = report.mean_gap
    atomic_write_text(run_dir / "report.json", json.dumps(payload, indent=1, default=str))
    atomic_write_text(run_dir / "report.md", _markdown(report))
    oof = pd.read_csv(run_dir / "oof.csv")
    oof = oof[~oof["presence_true"].isna()]
    plot_roc(oof, run_dir / "roc.png")
    plot_reliability(oof["presence_true"].to_numpy(int), oof["presence_prob"].to_numpy(),
                     run_dir / "reliability.png")
    histories = {int(h.parent.name.split("_")[1]): pd.read_csv(h)
                 for h in run_dir.glob("fold_*/history.csv")}
    plot_learning_curves(histories, run_dir / "learning_curves.png")
    return report
