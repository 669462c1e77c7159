"""The held-out views where the synthetic truth marks a sac, and which crops cover one: what
``crop_hits`` counts and ``crop_sheet`` draws."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..schema import VIEW_TYPES


def frame_sizes(arrays, positions: pd.DataFrame, root: Path, ids: list[int]
                ) -> dict[tuple[int, str], tuple[int, int]]:
    """(index, view name) -> the frame's (width, height), for each view with a sac: the truth's
    positions are in frame pixels."""
    from PIL import Image

    marked = set(zip(positions["Index"], positions["view"]))
    sizes = {}
    for i, index in enumerate(ids):
        for vid in arrays.view_ids[i]:
            name = VIEW_TYPES[int(vid)].name
            if (index, name) in marked:
                with Image.open(root / "test_set" / f"{index}{name}.jpg") as im:
                    sizes[(index, name)] = im.size
    return sizes


def views_with_sacs(arrays, positions: pd.DataFrame, sizes: dict[tuple[int, str], tuple[int, int]],
                    ids: list[int]) -> Iterator[tuple[int, int, np.ndarray]]:
    """(study row, view column, its sacs (n, 2) as (x, y) in [0, 1] of the view) for each
    present view the truth marks."""
    for i, index in enumerate(ids):
        for j, vid in enumerate(arrays.view_ids[i]):
            name = VIEW_TYPES[int(vid)].name
            marks = positions[(positions["Index"] == index) & (positions["view"] == name)]
            if marks.empty or not arrays.view_mask[i, j]:
                continue
            w, h = sizes[(index, name)]
            yield i, j, np.stack([marks["x"].to_numpy() / w, marks["y"].to_numpy() / h], -1)


def covers(crops: np.ndarray, sac: np.ndarray, field: float) -> np.ndarray:
    """(K, >= 2) crops as (x, y, ...) centres, one sac (x, y) -> (K,) whether each crop (a
    square of side ``field`` of the view) holds the sac's centre."""
    return np.maximum(abs(crops[:, 0] - sac[0]), abs(crops[:, 1] - sac[1])) < field / 2
