import json
import shutil

import pandas as pd
from click.testing import CliRunner

from aneurysm.cli.main import cli


def _check(root, *extra):
    return CliRunner().invoke(cli, ["check", "--source", "kium", "--root", str(root),
                                    "--workers", "1", "--show", "100", *extra])


def test_clean_synthetic_data_gets_a_clean_bill(kium_root, tmp_path):
    result = _check(kium_root, "--json", str(tmp_path / "f.json"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["findings"] == [] and report["images"] == 15 * 8
    assert report["image_sizes"] == {"96x96": 120}


def test_planted_faults_are_each_named(kium_root, tmp_path):
    folder = kium_root / "train_set"
    table = pd.read_csv(folder / "train.csv")
    a, b, c = (str(i) for i in table["Index"].iloc[:3])
    truncated = folder / f"{a}LI-A.jpg"
    truncated.write_bytes(truncated.read_bytes()[:400])
    (folder / f"{b}LV-B.jpg").unlink()
    shutil.copyfile(folder / f"{c}RI-A.jpg", folder / f"{c}LI-A (1).jpg")
    table.loc[1, "L_MCA"] = 2
    table = pd.concat([table, table.iloc[[4]]])
    table.to_csv(folder / "train.csv", index=False)

    result = _check(kium_root, "--json", str(tmp_path / "f.json"))
    assert result.exit_code == 1, result.output
    findings = json.loads((tmp_path / "f.json").read_text())["findings"]
    codes = {(f["code"], f["path"].split("/")[-1]) for f in findings}
    assert ("unreadable_image", f"{a}LI-A.jpg") in codes
    assert ("missing_views", f"{b}*") in codes
    assert ("unmatched_file", f"{c}LI-A (1).jpg") in codes
    assert ("duplicate_image", f"{c}LI-A (1).jpg") in codes
    assert any(f["code"] == "csv_bad_label" and "L_MCA='2'" in f["message"] for f in findings)
    assert any(f["code"] == "csv_duplicate_index" for f in findings)
    assert "unreadable_image" in result.output and "check failed" in result.output


def test_warnings_pass_unless_strict(kium_root):
    folder = kium_root / "train_set"
    next(folder.glob("*RV-B.jpg")).unlink()
    assert _check(kium_root).exit_code == 0
    assert _check(kium_root, "--strict").exit_code == 1


def test_csv_problems_empty_cells_inconsistent_presence_and_orphans(kium_root, tmp_path):
    folder = kium_root / "train_set"
    table = pd.read_csv(folder / "train.csv", dtype=str)
    table.loc[0, "R_ICA"] = ""
    neg = table.index[(table["Aneurysm"] == "0") & (table.index > 0)][0]
    table.loc[neg, "BA"] = "1"
    orphan_index = table["Index"].iloc[-1]
    table = table.iloc[:-1]
    table.loc[len(table) + 5] = ["7777"] + ["0"] * 22  # an Index with no images
    table.to_csv(folder / "train.csv", index=False)
    result = _check(kium_root, "--json", str(tmp_path / "f.json"))
    codes = {f["code"] for f in json.loads((tmp_path / "f.json").read_text())["findings"]}
    assert {"csv_empty_cell", "csv_presence_mismatch", "index_without_images",
            "images_without_index"} <= codes
    assert orphan_index in result.output and "7777" in result.output
    assert result.exit_code == 1


def test_wrong_header_and_garbage_files_are_reported_not_crashed_on(kium_root, tmp_path):
    folder = kium_root / "train_set"
    table = pd.read_csv(folder / "train.csv")
    table["extra"] = 1
    table.to_csv(folder / "train.csv", index=False)
    (folder / "1001LI-A.jpg").write_bytes(b"")  # empty
    (folder / "notes.jpg").write_text("not an image")
    result = _check(kium_root, "--json", str(tmp_path / "f.json"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    findings = json.loads((tmp_path / "f.json").read_text())["findings"]
    assert any(f["code"] == "csv_header" and "extra" in f["message"] for f in findings)
    unreadable = {f["path"].split("/")[-1] for f in findings if f["code"] == "unreadable_image"}
    assert unreadable == {"1001LI-A.jpg", "notes.jpg"}


def test_missing_root_is_a_one_line_error(tmp_path):
    result = _check(tmp_path / "absent")
    assert result.exit_code == 2
    assert "absent: K-ium root not found" in result.output
    assert "Traceback" not in result.output


def test_border_bands_and_text_are_reported_as_info(kium_root):
    import numpy as np
    from PIL import Image, ImageDraw

    path = kium_root / "train_set" / "1001LI-A.jpg"
    img = np.asarray(Image.open(path).convert("L")).copy()
    img[-12:, :] = 5
    pil = Image.fromarray(img)
    ImageDraw.Draw(pil).text((40, 5), "HOSPITAL", fill=255)
    pil.save(path, quality=95)
    result = _check(kium_root)
    assert result.exit_code == 0
    assert "border_band" in result.output and "overlay_text" in result.output
