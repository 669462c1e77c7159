"""The aneurysm sizes table: one row per aneurysm (``Index``, ``location``, ``radius_mm``), beside
a ground-truth table. The synthesizer writes it; anyone with measured sizes can write one; the
AUROC by size reads it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

SIZES_FILE = "aneurysm_sizes.csv"
SIZE_COLUMNS = ("Index", "location", "radius_mm")


def largest_radius(path: str | Path, index) -> np.ndarray:
    """Per patient of ``index`` (K-ium Index values): its largest aneurysm's radius in mm, NaN
    for a patient without a row. A missing or malformed file is one line naming it."""
    table = _read(path)
    largest = table["radius_mm"].groupby(table["Index"]).max()
    return np.array([float(largest.get(i, math.nan)) for i in index])


def _read(path: str | Path) -> pd.DataFrame:
    """The sizes table, checked: the columns there, every radius a positive number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "aneurysm sizes file not found")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a readable CSV ({exc.__class__.__name__})") from None
    missing = [c for c in SIZE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(path, f"missing columns {missing}; expected {list(SIZE_COLUMNS)}")
    radius = pd.to_numeric(table["radius_mm"], errors="coerce")
    if radius.isna().any() or (radius <= 0).any():
        row = int(np.flatnonzero(radius.isna() | (radius <= 0))[0]) + 2
        raise DataError(path, f"line {row}: radius_mm must be a positive number")
    return table.assign(radius_mm=radius)


def location_radius(path: str | Path, index, locations) -> np.ndarray:
    """(N, L) radius in mm of the largest aneurysm at each of ``locations`` for each patient of
    ``index``; NaN where the table has none."""
    table = _read(path)
    out = np.full((len(index), len(locations)), math.nan)
    rows = {v: i for i, v in enumerate(index)}
    cols = {v: j for j, v in enumerate(locations)}
    for index_, location, radius in zip(table["Index"], table["location"], table["radius_mm"]):
        i, j = rows.get(index_), cols.get(location)
        if i is not None and j is not None:
            out[i, j] = radius if math.isnan(out[i, j]) else max(out[i, j], radius)
    return out
