import json

import numpy as np
import pytest

from aneurysm.data.folds import load_folds, make_folds, save_folds
from aneurysm.errors import AneurysmError
from aneurysm.schema import (
    KIUM_VIEW_NAMES,
    LOCATION_NAMES,
    StudyRecord,
    ViewImage,
    fully_labelled,
)


def _records(n_patients=60, seed=0):
    """Patients with 1-3 studies each, as in sources that scan a patient more than once."""
    rng = np.random.default_rng(seed)
    out = []
    for p in range(n_patients):
        positive = rng.random() < 0.45
        locs = [0] * 21
        if positive:
            locs[rng.integers(0, 21)] = 1
        for s in range(rng.integers(1, 4)):
            out.append(StudyRecord(
                study_id=f"{p}-{s}", patient_id=f"P{p}", source="x", modality="DSA",
                views=tuple(ViewImage(v, None) for v in KIUM_VIEW_NAMES),
                presence=int(positive), **fully_labelled(locs)))
    return out


def test_folds_are_patient_disjoint_complete_and_stratified():
    records = _records()
    folds = make_folds(records, 5, seed=1)
    patient = {r.study_id: r.patient_id for r in records}
    presence = {r.study_id: r.presence for r in records}
    for f in folds:
        assert not {patient[s] for s in f.train} & {patient[s] for s in f.val}
    val = [s for f in folds for s in f.val]
    assert sorted(val) == sorted(r.study_id for r in records)
    overall = np.mean(list(presence.values()))
    for f in folds:
        assert abs(np.mean([presence[s] for s in f.val]) - overall) < 0.2
    assert make_folds(records, 5, seed=1) == folds  # same seed, same folds


def test_leaky_splits_file_is_refused(tmp_path):
    records = _records(20)
    folds = make_folds(records, 2, seed=0)
    path = tmp_path / "splits.json"
    save_folds(folds, path, seed=0)
    assert load_folds(path, records) == folds
    payload = json.loads(path.read_text())
    moved = payload["folds"][0]["val"][0]
    payload["folds"][0]["train"].append(moved)  # same study (so same patient) on both sides
    path.write_text(json.dumps(payload))
    with pytest.raises(AneurysmError, match="patients on both sides"):
        load_folds(path, records)


def test_too_few_patients_is_an_error():
    with pytest.raises(AneurysmError, match="cannot fill"):
        make_folds(_records(3), 5, seed=0)
    assert LOCATION_NAMES  # the label space the strata come from


def test_too_few_patients_to_stratify_is_one_clear_error():
    # two patients with one study each, one positive: no class can fill two folds
    records = [r for r in _records(n_patients=8, seed=0) if r.study_id.endswith("-0")]
    records = [next(r for r in records if r.presence), next(r for r in records
                                                            if not r.presence)]
    with pytest.raises(AneurysmError, match="cannot be stratified into 2 folds"):
        make_folds(records, 2, seed=0)
