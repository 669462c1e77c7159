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
