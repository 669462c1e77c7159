"""Patient-grouped, stratified k-fold splits, written once to ``splits.json`` and reused.

No patient is ever on both sides of a split: folds are made over patients (scikit-learn's
StratifiedGroupKFold), stratified on presence and the coarse territory of the aneurysms.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from ..errors import AneurysmError, DataError
from ..io.atomic import atomic_write_text
from ..schema import LOCATIONS, StudyRecord


@dataclass(frozen=True)
class Fold:
    train: tuple[str, ...]  # study ids
    val: tuple[str, ...]


def stratum(record: StudyRecord) -> str:
    """negative / anterior / posterior / both (or positive-unknown where locations are unknown)."""
    if not record.presence:
        return "negative"
    territories = {loc.territory for loc, v, k in
                   zip(LOCATIONS, record.locations, record.location_known) if k and v}
    if not territories:
        return "positive"
    return "both" if len(territories) > 1 else territories.pop()


def make_folds(records: list[StudyRecord], k: int, seed: int) -> list[Fold]:
    if k < 2:
        raise AneurysmError(f"--folds must be at least 2, got {k}")
    patients = {r.patient_id for r in records}
    if len(patients) < k:
        raise AneurysmError(f"{len(patients)} patients cannot fill {k} folds")
    ids = np.array([r.study_id for r in records])
    strata = np.array([stratum(r) for r in records])
    values, counts = np.unique(strata, return_counts=True)
    rare = {v for v, c in zip(values, counts) if c < k and v != "negative"}
    strata = np.array(["positive" if s in rare else s for s in strata])  # too few to spread
    groups = np.array([r.patient_id for r in records])
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # small data: a stratum smaller than k is expected
        warnings.filterwarnings("ignore", message="The least populated class")
        try:
            folds = [Fold(tuple(ids[tr]), tuple(ids[va]))
                     for tr, va in splitter.split(ids, strata, groups)]
        except ValueError:  # every stratum is smaller than k (a handful of patients)
            raise AneurysmError(
                f"{len(patients)} patients ({sum(s != 'negative' for s in strata)} positive "
                f"studies) cannot be stratified into {k} folds; use fewer folds or more "
                "patients") from None
    check_disjoint(folds, records)
    return folds


def check_disjoint(folds: list[Fold], records: list[StudyRecord], where: str = "splits") -> None:
    """Refuse any split with a patient on both sides, or a study in no validation fold."""
    patient_of = {r.study_id: r.patient_id for r in records}
    unknown = sorted({s for f in folds for s in f.train + f.val} - set(patient_of))
    if unknown:
        raise AneurysmError(f"{where}: studies not in the data: {unknown[:5]}")
    for i, f in enumerate(folds):
        leak = {patient_of[s] for s in f.train} & {patient_of[s] for s in f.val}
        if leak:
            raise AneurysmError(f"{where}: fold {i} has patients on both sides: "
                                f"{sorted(leak)[:5]}")
    validated = [s for f in folds for s in f.val]
    if len(validated) != len(set(validated)):
        raise AneurysmError(f"{where}: a study is in more than one validation fold")


def save_folds(folds: list[Fold], path: str | Path, seed: int) -> None:
    payload = {"seed": seed, "folds": [{"train": list(f.train), "val": list(f.val)}
                                       for f in folds]}
    atomic_write_text(path, json.dumps(payload, indent=1))


def load_folds(path: str | Path, records: list[StudyRecord]) -> list[Fold]:
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        folds = [Fold(tuple(map(str, f["train"])), tuple(map(str, f["val"])))
                 for f in payload["folds"]]
    except FileNotFoundError:
        raise DataError(path, "splits file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(path, f"not a splits file ({exc})") from None
    check_disjoint(folds, records, str(path))
    return folds
