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


def plot_learning_curves(histories: dict[int, pd.DataFrame], path: Path) -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for fold, h in sorted(histories.items()):
        line, = a1.plot(h["epoch"], h["train_loss"], lw=1, label=f"fold {fold} train")
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
