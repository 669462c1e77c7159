"""``aneurysm evaluate``: score an output.csv against ground truth, matched by Index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..metrics import (
    Interval,
    LocationScore,
    SizeScore,
    bootstrap_auroc,
    location_scores_by_size,
    official_scores,
    per_location,
    scores_by_size,
)
from ..schema import KIUM_COLUMNS, LOCATION_NAMES
from ..schema.sizes import SIZES_FILE, largest_radius, location_radius


@dataclass(frozen=True)
class Evaluation:
    n: int
    presence: Interval
    official: dict[str, float]
    locations: list[LocationScore]
    #: presence AUROC by the largest aneurysm's radius, where a sizes table says it
    by_size: tuple[SizeScore, ...] = ()
    #: location AUROC by the size of the aneurysm at each location, pooled over locations
    locations_by_size: tuple[SizeScore, ...] = ()


def read_table(path: Path, what: str) -> pd.DataFrame:
    """An output.csv-shaped table indexed by Index; a missing column or a repeated Index is an
    error naming the file."""
    if not path.is_file():
        raise DataError(path, f"{what} file not found")
    table = pd.read_csv(path)
    missing = [c for c in KIUM_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(path, f"{what} lacks columns {missing}")
    if table["Index"].duplicated().any():
        raise DataError(path, f"{what} repeats Index {table['Index'][table['Index'].duplicated()].iloc[0]}")
    return table.set_index("Index")


def evaluate_files(truth_path: str | Path, pred_path: str | Path, n_boot: int = 2000,
                   sizes_path: str | Path | None = None) -> Evaluation:
    """``sizes_path``: an aneurysm sizes table (``schema.sizes``); by default the one beside the
    ground truth, if there is one."""
    truth_path, pred_path = Path(truth_path), Path(pred_path)
    if sizes_path is None and (truth_path.parent / SIZES_FILE).is_file():
        sizes_path = truth_path.parent / SIZES_FILE
    return evaluate_tables(read_table(truth_path, "ground truth"),
                           read_table(pred_path, "prediction"),
                           truth_path, pred_path, n_boot, sizes_path)


def evaluate_tables(truth: pd.DataFrame, pred: pd.DataFrame, truth_path: str | Path,
                    pred_path: str | Path, n_boot: int = 2000,
                    sizes_path: str | Path | None = None) -> Evaluation:
    """Both tables indexed by Index with the 23 columns; the paths name them in errors."""
    truth_path, pred_path = Path(truth_path), Path(pred_path)
    only_truth = sorted(set(truth.index) - set(pred.index))
    only_pred = sorted(set(pred.index) - set(truth.index))
    if only_truth or only_pred:
        raise DataError(pred_path, f"Index sets differ from {truth_path.name}: missing "
                                   f"{only_truth[:5]}, extra {only_pred[:5]}")
    pred = pred.loc[truth.index]  # matched by Index, not by position
    y = truth["Aneurysm"].to_numpy(int)
    p = pred["Aneurysm"].to_numpy(float)
    t_loc = truth[list(LOCATION_NAMES)].to_numpy(float)
    p_loc = pred[list(LOCATION_NAMES)].to_numpy(float)
    by_size = locations_by_size = ()
    if sizes_path is not None:
        boot = min(n_boot, 1000)
        by_size = tuple(scores_by_size(y, p, largest_radius(sizes_path, truth.index), boot))
        locations_by_size = tuple(location_scores_by_size(
            t_loc, p_loc, location_radius(sizes_path, truth.index, LOCATION_NAMES), boot))
    return Evaluation(len(truth), bootstrap_auroc(y, p, n_boot=n_boot),
                      official_scores(y, p, t_loc, p_loc), per_location(t_loc, p_loc), by_size,
                      locations_by_size)
