import dataclasses
import json
import math

import pytest

from aneurysm.errors import DataError
from aneurysm.schema import (
    KIUM_COLUMNS,
    KIUM_VIEW_NAMES,
    LOCATION_NAMES,
    LOCATIONS,
    MIRROR_PERMUTATION,
    GroupLabel,
    StudyRecord,
    ViewImage,
    fully_labelled,
    load_manifest,
    mirror_view_name,
    save_manifest,
    view_type,
)


def _record(**kw) -> StudyRecord:
    base = dict(study_id="1001", patient_id="1001", source="kium", modality="DSA",
                views=tuple(ViewImage(v, f"/x/{v}.jpg") for v in KIUM_VIEW_NAMES))
    base.update(kw)
    return StudyRecord(**base)


def test_official_columns_and_location_facts():
    assert KIUM_COLUMNS[:3] == ("Index", "Aneurysm", "L_ICA")
    assert KIUM_COLUMNS[-1] == "R_PCA" and len(KIUM_COLUMNS) == 23
    by_name = {loc.name: loc for loc in LOCATIONS}
    assert by_name["BA"].side == "mid" and by_name["BA"].territory == "posterior"
    assert by_name["L_ACOM"].territory == "anterior" and by_name["R_PICA"].side == "R"


def test_views_describe_side_artery_projection():
    assert KIUM_VIEW_NAMES == ("LI-A", "LI-B", "LV-A", "LV-B", "RI-A", "RI-B", "RV-A", "RV-B")
    v = view_type("RV-B")
    assert (v.side, v.artery, v.projection) == ("R", "VA", "lateral")
    assert mirror_view_name("LI-A") == "RI-A"
    with pytest.raises(KeyError, match="known views"):
        view_type("XX-A")


def test_mirror_permutation_is_an_involution_that_swaps_sides():
    perm = MIRROR_PERMUTATION
    assert all(perm[perm[i]] == i for i in range(len(perm)))
    assert LOCATION_NAMES[perm[LOCATION_NAMES.index("L_MCA")]] == "R_MCA"
    assert perm[LOCATION_NAMES.index("BA")] == LOCATION_NAMES.index("BA")


def test_records_are_immutable_and_relabel_returns_a_new_record():
    r = _record(presence=0, **fully_labelled([0] * 21))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.presence = 1  # type: ignore[misc]
    locs = [0] * 21
    locs[LOCATION_NAMES.index("R_MCA")] = 1
    r2 = r.relabel(presence=1, locations=tuple(locs))
    assert r.presence == 0 and r2.presence == 1
    assert r2.positive_locations == ("R_MCA",)


def test_absent_views_are_explicit_and_unknown_labels_are_nan():
    views = tuple(ViewImage(v, None if v == "LV-B" else f"/x/{v}.jpg") for v in KIUM_VIEW_NAMES)
    r = _record(views=views)
    assert r.missing_views == ("LV-B",) and len(r.available_views) == 7
    assert r.view_path("LV-B") is None
    assert all(math.isnan(v) for v in r.location_vector())  # nothing known by default
    assert not r.is_labelled


def test_record_validation_rejects_bad_labels_and_views():
    with pytest.raises(ValueError):
        _record(locations=(2,) + (0,) * 20)
    with pytest.raises(ValueError):
        _record(presence=3)
    with pytest.raises(KeyError):
        _record(views=(ViewImage("nope", None),))
    with pytest.raises(ValueError):
        GroupLabel(("L_ACOM",))


def test_manifest_round_trip_and_label_space_guard(tmp_path):
    known = [True] * 21
    known[LOCATION_NAMES.index("L_AntChor")] = False
    records = [
        _record(presence=1, locations=(1,) + (0,) * 20, location_known=tuple(known),
                groups=(GroupLabel(("L_ACOM", "R_ACOM")),), attributes=(("age", "61"),)),
        _record(study_id="1002", patient_id="1002", split="test"),
    ]
    path = save_manifest(records, tmp_path / "m.json")
    assert load_manifest(path) == records
    payload = json.loads(path.read_text())
    payload["locations"] = payload["locations"][::-1]
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match="different location list"):
        load_manifest(path)
    with pytest.raises(DataError, match="not found"):
        load_manifest(tmp_path / "missing.json")
