import pandas as pd
import pytest
from PIL import Image

from aneurysm.errors import DataError
from aneurysm.registry import get_adapter
from aneurysm.schema import KIUM_VIEW_NAMES, LOCATION_NAMES


def test_train_records_match_the_csv(kium_root):
    records = get_adapter("kium").load(kium_root, "train")
    table = pd.read_csv(kium_root / "train_set" / "train.csv")
    assert [r.study_id for r in records] == [str(i) for i in table["Index"]]
    for r, row in zip(records, table.itertuples(index=False)):
        assert r.presence == row.Aneurysm and r.source == "kium" and r.modality == "DSA"
        assert r.locations == tuple(getattr(row, c) for c in LOCATION_NAMES)
        assert all(r.location_known)
        assert r.available_views == KIUM_VIEW_NAMES


def test_test_split_is_unlabelled_and_keeps_csv_row_order(kium_root):
    csv = kium_root / "test_set" / "test.csv"
    table = pd.read_csv(csv)
    shuffled = table.iloc[::-1]
    shuffled.to_csv(csv, index=False)
    records = get_adapter("kium").load(kium_root, "test")
    assert [r.study_id for r in records] == [str(i) for i in shuffled["Index"]]
    assert all(not r.is_labelled and r.split == "test" for r in records)


def test_padded_names_png_rgb_and_missing_views_are_accepted(kium_root):
    folder = kium_root / "train_set"
    first = pd.read_csv(folder / "train.csv")["Index"].iloc[0]
    (folder / f"{first}LI-A.jpg").rename(folder / f"0{first}LI-A.jpg")  # zero-padded
    img = Image.open(folder / f"{first}LI-B.jpg").convert("RGB")
    img.save(folder / f"{first}LI-B.png")  # 3-channel PNG
    (folder / f"{first}LI-B.jpg").unlink()
    (folder / f"{first}RV-B.jpg").unlink()
    rec = get_adapter("kium").load(kium_root, "train")[0]
    assert rec.view_path("LI-A").endswith(f"0{first}LI-A.jpg")
    assert rec.view_path("LI-B").endswith(".png")
    assert rec.view_path("RV-B") is None and rec.missing_views == ("RV-B",)


def test_bad_roots_give_one_line_errors_naming_the_path(kium_root, tmp_path):
    adapter = get_adapter("kium")
    with pytest.raises(DataError, match="K-ium root not found"):
        adapter.load(tmp_path / "nowhere")
    (kium_root / "train_set" / "train.csv").unlink()
    with pytest.raises(DataError, match=r"train\.csv: label CSV not found"):
        adapter.load(kium_root)


def test_wrong_header_is_named(kium_root):
    csv = kium_root / "train_set" / "train.csv"
    table = pd.read_csv(csv).rename(columns={"L_MCA": "LMCA"})
    table.to_csv(csv, index=False)
    with pytest.raises(DataError) as err:
        get_adapter("kium").load(kium_root)
    assert "wrong header" in str(err.value) and "L_MCA" in str(err.value)
    assert str(csv) in str(err.value)
