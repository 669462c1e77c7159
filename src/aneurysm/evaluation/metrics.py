"""Metrics, with scikit-learn doing the arithmetic.

The official K-ium score is presence AUROC, with "location accuracy" (1 - mean absolute error
over all 21 x N cells) as tie-breaker. Predicting all zeros already scores ~0.97 on that, so it
is always shown beside the all-zeros baseline, and per-location AUROC / AP are the real measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ..schema import LOCATION_NAMES


def safe_auroc(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC, or NaN when only one class is present (it is undefined then)."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return math.nan
    return float(roc_auc_score(y, p))


def location_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """The organizers' formula: 1 - sum|truth - pred| / (rows x 21)."""
    truth, pred = np.asarray(truth, float), np.asarray(pred, float)
    return float(1.0 - np.abs(truth - pred).sum() / truth.size)


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_auroc(y: np.ndarray, p: np.ndarray, n_boot: int = 2000, seed: int = 0,
                    alpha: float = 0.05) -> Interval:
    """Percentile bootstrap over patients (resampling rows), 95% by default."""
    y, p = np.asarray(y), np.asarray(p)
    value = safe_auroc(y, p)
    if math.isnan(value):
        return Interval(value, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    stats = [roc_auc_score(y[i], p[i]) for i in idx if 0 < y[i].sum() < len(i)]
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return Interval(value, float(low), float(high))


@dataclass(frozen=True)
class LocationScore:
    name: str
    positives: int
    auroc: float
    average_precision: float


def per_location(truth: np.ndarray, probs: np.ndarray) -> list[LocationScore]:
    """AUROC and AP per location; NaN (not available) with fewer than 2 positives."""
    out = []
    for j, name in enumerate(LOCATION_NAMES):
        y = np.asarray(truth)[:, j]
        n_pos = int(y.sum())
        if n_pos < 2 or n_pos == len(y):
            out.append(LocationScore(name, n_pos, math.nan, math.nan))
        else:
            out.append(LocationScore(name, n_pos, safe_auroc(y, probs[:, j]),
                                     float(average_precision_score(y, probs[:, j]))))
    return out


def official_scores(truth_presence: np.ndarray, prob_presence: np.ndarray,
                    truth_locations: np.ndarray, pred_locations: np.ndarray) -> dict[str, float]:
    return {
        "auroc": safe_auroc(truth_presence, prob_presence),
        "location_accuracy": location_accuracy(truth_locations, pred_locations),
        "location_accuracy_all_zeros": location_accuracy(truth_locations,
                                                         np.zeros_like(truth_locations)),
    }


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(brier_score_loss(np.asarray(y), np.asarray(p)))


def accuracy_thresholds(truth: np.ndarray, probs: np.ndarray) -> list[float]:
    """Per location, the cut on out-of-fold probabilities that maximises the official location
    accuracy (ties go to the higher cut, i.e. towards predicting 0)."""
    cuts = []
    for j in range(truth.shape[1]):
        y, p = truth[:, j], probs[:, j]
        candidates = np.unique(np.concatenate([p, [1.0 + 1e-9]]))
        best_cut, best_err = 1.0 + 1e-9, np.abs(y).sum()
        for c in candidates:
            err = np.abs(y - (p >= c)).sum()
            if err < best_err or (err == best_err and c > best_cut):
                best_cut, best_err = float(c), err
        cuts.append(min(best_cut, 1.0 + 1e-9))
    return cuts
