"""DSA runs as DICOM: synthetic multi-frame X-ray angiography runs, imported into the K-ium
layout by their positioner angles and a run table, then trained on and predicted from."""

import numpy as np
import pandas as pd
import pydicom
import pytest
from click.testing import CliRunner

from aneurysm.cli.main import cli
from aneurysm.io.images import load_grayscale
from aneurysm.registry import get_adapter
from aneurysm.synth.dsa_runs import LABELS, RUN_TABLE, write_dsa_runs

pytestmark = pytest.mark.slow


def test_imported_runs_train_and_predict_like_a_kium_root(kium_root, tmp_path, cfg):
    train_runs = write_dsa_runs(kium_root, tmp_path / "train_runs", "train", frames=8, seed=1)
    test_runs = write_dsa_runs(kium_root, tmp_path / "test_runs", "test", frames=8, seed=2)
    files = sorted((train_runs / "runs").rglob("*.dcm"))
    stored = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert all(d.Modality == "XA" and int(d.NumberOfFrames) == 8 for d in stored)
    assert 0 < sum("MaskSubtractionSequence" in d for d in stored) < len(stored)
    runner = CliRunner()
    result = runner.invoke(cli, ["import-dsa", str(train_runs), "--out", str(tmp_path / "kd"),
                                 "--labels", str(train_runs / LABELS)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["import-dsa", str(test_runs), "--out",
                                 str(tmp_path / "kd_test")])
    assert result.exit_code == 0, result.output
    # every view lands in its K-ium slot, frontal or lateral by the C-arm's angle alone
    original = sorted(p.name for p in (kium_root / "train_set").glob("*.jpg"))
    imported = sorted(p.name for p in (tmp_path / "kd" / "train_set").glob("*.jpg"))
    assert imported == original
    for name in original[:8]:  # the arterial frame is the view the run was made from
        want = load_grayscale(kium_root / "train_set" / name).astype(float)
        got = load_grayscale(tmp_path / "kd" / "train_set" / name).astype(float)
        assert np.abs(got - want).mean() < 8 and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9
    assert pd.read_csv(tmp_path / "kd" / "train_set" / "train.csv").equals(
        pd.read_csv(kium_root / "train_set" / "train.csv"))
    records = get_adapter("kium").load(tmp_path / "kd", "train")
    assert len(records) == 10 and all(len(r.views) == 8 for r in records)
    out = tmp_path / "run"
    result = runner.invoke(cli, ["finetune", "--root", str(tmp_path / "kd"), "--out", str(out),
                                 "--config", str(cfg), "--folds", "2"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["predict", "--run", str(out), "--input",
                                 str(tmp_path / "kd_test" / "test_set"), "--output",
                                 str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "o.csv")) == len(pd.read_csv(
        kium_root / "test_set" / "test.csv"))


def test_bad_runs_and_tables_are_one_line_errors(kium_root, tmp_path):
    runs = write_dsa_runs(kium_root, tmp_path / "runs", "test", frames=4, seed=0)
    table = pd.read_csv(runs / RUN_TABLE)
    broken = runs / table["file"].iloc[0]
    broken.write_bytes(b"not dicom")
    runner = CliRunner()
    result = runner.invoke(cli, ["import-dsa", str(runs), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and broken.name in result.output
    assert "Traceback" not in result.output and not (tmp_path / "a").exists()
    result = runner.invoke(cli, ["import-dsa", str(runs), "--out", str(tmp_path / "b"),
                                 "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "skipped with --skip-bad: 1:" in " ".join(result.output.split())
    table.loc[1, "injection"] = "LX"
    table.to_csv(runs / RUN_TABLE, index=False)
    result = runner.invoke(cli, ["import-dsa", str(runs), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "injection must be one of" in result.output
