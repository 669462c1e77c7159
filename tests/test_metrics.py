"""The vectorised bootstrap behind every interval in the reports agrees with scikit-learn on
every resample, ties included, and the intervals cover the point estimate."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from aneurysm.metrics import (
    _resampled_scores,
    bootstrap_auroc,
    location_intervals,
)


@pytest.mark.parametrize("decimals", [1, 2, 8])
def test_resampled_auroc_and_ap_equal_scikit_learn(decimals):
    rng = np.random.default_rng(decimals)
    y = (rng.random(90) < 0.3).astype(int)
    p = np.round(rng.random(90) * 0.6 + 0.3 * y, decimals)  # coarse rounding: many ties
    aurocs, aps = _resampled_scores(y, p, n_boot=150, seed=4)
    idx = np.random.default_rng(4).integers(0, 90, size=(150, 90))
    kept = [i for i in idx if 0 < y[i].sum() < 90]
    assert len(aurocs) == len(kept)
    assert np.allclose(aurocs, [roc_auc_score(y[i], p[i]) for i in kept], atol=1e-12)
    assert np.allclose(aps, [average_precision_score(y[i], p[i]) for i in kept], atol=1e-12)


def test_intervals_bracket_the_estimate_and_skip_rare_locations():
    rng = np.random.default_rng(0)
    truth = np.zeros((120, 21))
    truth[rng.choice(120, 30, replace=False), 3] = 1
    truth[5, 7] = 1  # one positive: no AUROC
    probs = np.clip(truth * 0.4 + rng.random((120, 21)) * 0.6, 0, 1)
    scores = location_intervals(truth, probs, n_boot=300)
    s = scores[3]
    assert s.positives == 30 and s.auroc.low <= s.auroc.value <= s.auroc.high
    assert s.average_precision.low <= s.average_precision.value <= s.average_precision.high
    assert s.auroc.value == pytest.approx(roc_auc_score(truth[:, 3], probs[:, 3]))
    assert np.isnan(scores[7].auroc.value) and scores[7].positives == 1
    whole = bootstrap_auroc(truth[:, 3], probs[:, 3], n_boot=300)
    assert whole.value == pytest.approx(s.auroc.value) and whole.high - whole.low < 0.3


def test_auroc_by_size_scores_each_bins_positives_against_every_negative():
    from aneurysm.metrics import SIZE_BINS, scores_by_size

    presence = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    radius = np.array([np.nan] * 4 + [1.5, 1.8, 2.5, 3.5, np.nan])  # the last: size unknown
    # small ones ranked among the negatives, large ones above all of them
    prob = np.array([0.1, 0.3, 0.5, 0.7, 0.2, 0.6, 0.8, 0.9, 0.95])
    scores = {s.label: s for s in scores_by_size(presence, prob, radius, n_boot=50)}
    assert [b[0] for b in SIZE_BINS] == list(scores)
    small = scores["under 2 mm"]
    assert (small.positives, small.negatives) == (2, 4)
    assert small.auroc.value == pytest.approx((1 + 3) / 8)  # 0.2 beats 1 negative, 0.6 beats 3
    assert scores["2-3 mm"].auroc.value == 1.0 and scores["3-4.5 mm"].positives == 1
    assert scores["4.5 mm or more"].positives == 0 and np.isnan(scores["4.5 mm or more"].auroc.value)
