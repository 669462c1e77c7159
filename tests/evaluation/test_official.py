"""``aneurysm evaluate`` on real files: the AUROC by size comes from the sizes table beside the
ground truth, a bad sizes table is one line, and without one there is no size table."""

import numpy as np
import pandas as pd
from click.testing import CliRunner

from aneurysm.cli.main import cli
from aneurysm.evaluation.official import evaluate_files
from aneurysm.schema.sizes import SIZES_FILE


def _prediction(kium_root, tmp_path):
    truth = pd.read_csv(kium_root / "groundtruth.csv")
    pred = truth.copy().astype(float)
    pred["Index"] = truth["Index"]
    pred["Aneurysm"] = np.where(truth["Aneurysm"] == 1, 0.9, 0.1)  # every positive found
    pred.to_csv(tmp_path / "p.csv", index=False)
    return tmp_path / "p.csv", truth


def test_the_sizes_beside_the_truth_give_an_auroc_by_size(kium_root, tmp_path):
    pred, truth = _prediction(kium_root, tmp_path)
    evaluation = evaluate_files(kium_root / "groundtruth.csv", pred, n_boot=50)
    scored = [s for s in evaluation.by_size if s.positives]
    assert sum(s.positives for s in evaluation.by_size) == int(truth["Aneurysm"].sum())
    assert scored and all(s.auroc.value == 1.0 for s in scored)
    assert all(s.negatives == int((truth["Aneurysm"] == 0).sum()) for s in evaluation.by_size)
    result = CliRunner().invoke(cli, ["evaluate", "--truth", str(kium_root / "groundtruth.csv"),
                                      "--pred", str(pred), "--bootstrap", "50"])
    assert result.exit_code == 0 and "largest aneurysm's radius" in result.output
    (kium_root / SIZES_FILE).unlink()
    assert evaluate_files(kium_root / "groundtruth.csv", pred, n_boot=50).by_size == ()


def test_the_location_auroc_by_size_bins_each_location_by_the_aneurysm_there(kium_root,
                                                                              tmp_path):
    pred_path, truth = _prediction(kium_root, tmp_path)
    sizes = pd.read_csv(kium_root / SIZES_FILE)
    sizes = sizes[sizes["Index"].isin(truth["Index"])]  # the scored patients' aneurysms
    large = sizes[sizes["radius_mm"] >= 3.0]
    pred = pd.read_csv(pred_path)
    locations = [c for c in truth.columns if c not in ("Index", "Aneurysm")]
    pred[locations] = 0.1  # every empty location
    pairs = sizes.groupby(["Index", "location"])["radius_mm"].max()  # the largest there
    for (index, location), radius in pairs.items():
        # small aneurysms missed (0), large ones found (0.9)
        pred.loc[pred["Index"] == index, location] = 0.9 if radius >= 3.0 else 0.0
    pred.to_csv(pred_path, index=False)
    e = evaluate_files(kium_root / "groundtruth.csv", pred_path, n_boot=50)
    by_label = {s.label: s for s in e.locations_by_size}
    assert sum(s.positives for s in e.locations_by_size) == len(pairs)
    assert all(s.negatives == int((truth[locations] == 0).to_numpy().sum())
               for s in e.locations_by_size)
    for label, low, high in (("under 2 mm", 0, 2), ("2-3 mm", 2, 3), ("3-4.5 mm", 3, 4.5)):
        n = int(((pairs >= low) & (pairs < high)).sum())
        assert by_label[label].positives == n
        if n:
            assert by_label[label].auroc.value == (1.0 if low >= 3 else 0.0)
            assert by_label[label].auroc.low <= by_label[label].auroc.value <= \
                by_label[label].auroc.high
    assert len(large) and len(sizes) > len(large)  # the draw has both kinds
    result = CliRunner().invoke(cli, ["evaluate", "--truth", str(kium_root / "groundtruth.csv"),
                                      "--pred", str(pred_path), "--bootstrap", "50"])
    assert result.exit_code == 0 and "radius of the aneurysm at each location" in result.output


def test_a_bad_sizes_table_is_one_line_naming_it(kium_root, tmp_path):
    pred, _ = _prediction(kium_root, tmp_path)
    bad = tmp_path / "sizes.csv"
    bad.write_text("Index,location,radius_mm\n3001,BA,-1\n")
    result = CliRunner().invoke(cli, ["evaluate", "--truth", str(kium_root / "groundtruth.csv"),
                                      "--pred", str(pred), "--sizes", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sizes.csv" in result.output and "radius_mm must be a positive number" in result.output
    bad.write_text("Index,radius\n1,2\n")
    result = CliRunner().invoke(cli, ["evaluate", "--truth", str(kium_root / "groundtruth.csv"),
                                      "--pred", str(pred), "--sizes", str(bad)])
    assert result.exit_code == 2 and "missing columns ['location', 'radius_mm']" in result.output
