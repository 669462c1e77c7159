"""Sample a cohort's labels so prevalence, multiplicity and location mix follow the real train set."""

from __future__ import annotations

import numpy as np

from ..schema.locations import (
    KIUM_ANEURYSMS_PER_PATIENT,
    KIUM_TRAIN_PATIENTS,
    KIUM_TRAIN_POSITIVE_PATIENTS,
    KIUM_TRAIN_POSITIVES,
    LOCATION_NAMES,
)

PREVALENCE = KIUM_TRAIN_POSITIVE_PATIENTS / KIUM_TRAIN_PATIENTS


def sample_indices(rng: np.random.Generator, n: int, start: int) -> list[int]:
    """Integer Index values from ``start`` upward with occasional gaps, as in the real data."""
    out, current = [], start
    for _ in range(n):
        out.append(current)
        current += 1 + int(rng.random() < 0.1)
    return out


def sample_cohort_labels(rng: np.random.Generator, n: int,
                         prevalence: float = PREVALENCE) -> list[list[str]]:
    """Each patient's aneurysm locations (empty for a negative), in official location order."""
    n_pos = int(round(n * prevalence))
    positive = np.zeros(n, dtype=bool)
    positive[rng.choice(n, size=n_pos, replace=False)] = True
    counts = np.array(sorted(KIUM_ANEURYSMS_PER_PATIENT))
    count_p = np.array([KIUM_ANEURYSMS_PER_PATIENT[c] for c in counts], dtype=float)
    count_p /= count_p.sum()
    loc_p = np.asarray(KIUM_TRAIN_POSITIVES, dtype=float)
    loc_p /= loc_p.sum()
    cohort: list[list[str]] = []
    for is_pos in positive:
        if not is_pos:
            cohort.append([])
            continue
        k = int(rng.choice(counts, p=count_p))
        chosen = rng.choice(len(LOCATION_NAMES), size=k, replace=False, p=loc_p)
        cohort.append([LOCATION_NAMES[i] for i in sorted(chosen)])
    return cohort
