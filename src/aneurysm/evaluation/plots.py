"""Report plots: ROC curves, learning curves, reliability diagram."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ..io.atomic import atomic_savefig  # noqa: E402


def _save(fig, path: Path) -> None:
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)


def plot_roc(oof: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    for fold, part in oof.groupby("fold"):
        if part["presence_true"].nunique() == 2:
            fpr, tpr, _ = roc_curve(part["presence_true"], part["presence_prob"])
            ax.plot(fpr, tpr, lw=0.8, alpha=0.6, label=f"fold {fold}")
    if oof["presence_true"].nunique() == 2:
        fpr, tpr, _ = roc_curve(oof["presence_true"], oof["presence_prob"])
        ax.plot(fpr, tpr, lw=2.0, color="black", label="pooled")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title="Presence ROC (out-of-fold)")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_learning_curves(histories: dict[int | str, pd.DataFrame], path: Path) -> None:
    """Per fold (int keys) or per named run (str keys, e.g. a pretraining)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for fold, h in sorted(histories.items(), key=lambda kv: str(kv[0])):
        name = fold if isinstance(fold, str) else f"fold {fold}"
        line, = a1.plot(h["epoch"], h["train_loss"], lw=1, label=f"{name} train")
        a1.plot(h["epoch"], h["val_loss"], lw=1, ls="--", color=line.get_color())
        a2.plot(h["epoch"], h["train_auroc"], lw=1, color=line.get_color())
        a2.plot(h["epoch"], h["val_auroc"], lw=1, ls="--", color=line.get_color())
    a1.set(xlabel="epoch", ylabel="loss", title="loss (solid train, dashed validation)")
    a2.set(xlabel="epoch", ylabel="presence AUROC", title="AUROC (solid train, dashed val)")
    a1.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_reliability(y: np.ndarray, p: np.ndarray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    if len(np.unique(y)) == 2:
        frac, mean = calibration_curve(y, p, n_bins=8, strategy="quantile")
        ax.plot(mean, frac, marker="o")
    ax.plot([0, 1], [0, 1], ls="--", color="grey")
    ax.set(xlabel="predicted probability", ylabel="observed frequency",
           title="Reliability (presence, out-of-fold)")
    _save(fig, path)


def plot_roc_band(y: np.ndarray, p: np.ndarray, path: Path, n_boot: int = 500,
                  seed: int = 0) -> None:
    """The pooled out-of-fold ROC with a 95% bootstrap band (patients resampled): how sure the
    curve is, not only the area under it."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if len(np.unique(y)) == 2:
        grid = np.linspace(0, 1, 101)
        rng = np.random.default_rng(seed)
        curves = []
        for _ in range(n_boot):
            i = rng.integers(0, len(y), len(y))
            if 0 < y[i].sum() < len(i):
                fpr, tpr, _ = roc_curve(y[i], p[i])
                curves.append(np.interp(grid, fpr, tpr))
        low, high = np.quantile(curves, [0.025, 0.975], axis=0)
        ax.fill_between(grid, low, high, color="tab:blue", alpha=0.25, label="95% bootstrap band")
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, color="tab:blue", lw=2, label="pooled out-of-fold")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Presence ROC")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def plot_location_scores(names: list[str], values: np.ndarray, lows: np.ndarray,
                         highs: np.ndarray, counts: list[int], path: Path) -> None:
    """Per-location AUROC with intervals, sorted, with the number of positives named."""
    order = np.argsort(np.nan_to_num(values, nan=-1.0))
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(names) + 1.2))
    ypos = np.arange(len(names))
    v, lo, hi = values[order], lows[order], highs[order]
    ok = ~np.isnan(v)
    ax.errorbar(v[ok], ypos[ok], xerr=[v[ok] - lo[ok], hi[ok] - v[ok]], fmt="o", ms=4,
                color="tab:blue", ecolor="tab:blue", elinewidth=1, capsize=2)
    ax.set_yticks(ypos, [f"{names[k]} (n={counts[k]})" for k in order], fontsize=7)
    ax.axvline(0.5, ls="--", color="grey", lw=0.8)
    ax.set(xlim=(0, 1), xlabel="AUROC (95% bootstrap interval); n/a rows have < 2 positives",
           title="Per-location AUROC, out-of-fold")
    fig.tight_layout()
    _save(fig, path)
