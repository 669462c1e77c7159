"""End-to-end: finetune -> report -> predict -> evaluate on small synthetic data, real files."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import write_config
from PIL import Image

from aneurysm.cli.main import cli
from aneurysm.model.checkpoint import read_checkpoint
from aneurysm.schema import KIUM_COLUMNS

pytestmark = pytest.mark.slow  # fine-tunes, predicts and evaluates end to end


def _finetune(root, out, cfg, *extra):
    return CliRunner().invoke(cli, ["finetune", "--root", str(root), "--out", str(out),
                                    "--config", str(cfg), "--folds", "2", *extra])


def test_finetune_writes_a_complete_reproducible_run(kium_root, tmp_path, cfg):
    out = tmp_path / "run"
    result = _finetune(kium_root, out, cfg)
    assert result.exit_code == 0, result.output
    assert "presence AUROC" in result.output
    for name in ("config.yaml", "meta.json", "splits.json", "oof.csv", "thresholds.json",
                 "report.md", "report.json", "roc.png", "learning_curves.png",
                 "reliability.png", "records.json"):
        assert (out / name).is_file(), name
    for k in (0, 1):
        for name in ("best.safetensors", "last.safetensors", "last.state.pt", "history.csv",
                     "oof.csv", "summary.json"):
            assert (out / f"fold_{k}" / name).is_file()
        assert list(pd.read_csv(out / f"fold_{k}" / "history.csv")["epoch"]) == [1, 2]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 7 and "torch" in meta["versions"] and meta["git_commit"]
    report = json.loads((out / "report.json").read_text())
    assert 0.0 <= report["presence"]["value"] <= 1.0 and len(report["folds"]) == 2
    assert len(pd.read_csv(out / "oof.csv")) == 10  # every patient predicted out of fold once

    again = _finetune(kium_root, out, cfg)  # never overwrite without --force
    assert again.exit_code == 2 and "--force" in again.output

    out2 = tmp_path / "run2"
    assert _finetune(kium_root, out2, cfg).exit_code == 0
    assert (out / "splits.json").read_text() == (out2 / "splits.json").read_text()
    a, b = pd.read_csv(out / "oof.csv"), pd.read_csv(out2 / "oof.csv")
    assert np.allclose(a["presence_prob"], b["presence_prob"], atol=1e-5)

    # predict the test set (rows shuffled) and score it against the truth
    csv = kium_root / "test_set" / "test.csv"
    test = pd.read_csv(csv).iloc[::-1]
    test.to_csv(csv, index=False)
    first = test["Index"].iloc[0]
    (kium_root / "test_set" / f"{first}LV-B.jpg").unlink()  # a patient with a missing view
    pred = tmp_path / "output.csv"
    result = CliRunner().invoke(cli, ["predict", "--run", str(out), "--input",
                                      str(kium_root / "test_set"), "--output", str(pred)])
    assert result.exit_code == 0, result.output
    assert "1 patient(s) predicted from fewer than 8 views" in result.output
    table = pd.read_csv(pred)
    assert list(table.columns) == list(KIUM_COLUMNS)
    assert list(table["Index"]) == list(test["Index"])
    assert table["Aneurysm"].between(0, 1).all()
    assert set(np.unique(table.iloc[:, 2:])) <= {0, 1}
    result = CliRunner().invoke(cli, ["evaluate", "--truth", str(kium_root / "groundtruth.csv"),
                                      "--pred", str(pred), "--bootstrap", "200"])
    assert result.exit_code == 0, result.output and "presence AUROC" in result.output

    # maps as explanations: a montage per patient, the same predictions as without --maps
    maps = tmp_path / "maps"
    result = CliRunner().invoke(cli, ["predict", "--run", str(out), "--input",
                                      str(kium_root / "test_set"), "--output", str(pred),
                                      "--maps", str(maps), "--force"])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in maps.glob("*.png")) == sorted(str(i) for i in test["Index"])
    with Image.open(maps / f"{first}.png") as montage:
        assert montage.format == "PNG" and montage.width > montage.height > 256
        pixels = np.asarray(montage.convert("RGB"))
    assert (pixels != 255).any(axis=2).mean() > 0.5  # views drawn, not an empty canvas
    assert pd.read_csv(pred).equals(table)

    # init from a finished run's checkpoint: body matches; another embed size does not
    assert _finetune(kium_root, tmp_path / "run3", cfg, "--init",
                     str(out / "fold_0" / "best.safetensors")).exit_code == 0
    cfg = write_config(tmp_path, "embed16.yaml", model={"embed_dim": 16})
    bad = _finetune(kium_root, tmp_path / "run4", cfg, "--init",
                    str(out / "fold_0" / "best.safetensors"))
    assert bad.exit_code == 2 and "embed_dim" in bad.output

    # the weights are safetensors with the contract in their header, readable without torch's
    # pickle; a run written before, with .pt files, still predicts the same
    from safetensors import safe_open

    with safe_open(str(out / "fold_0" / "best.safetensors"), framework="pt") as f:
        header = json.loads(f.metadata()["aneurysm"])
    assert header["model"]["model"] == "dense" and len(header["labels"]) == 21
    old = tmp_path / "old_run"
    shutil.copytree(out, old)
    for weights in old.glob("fold_*/*.safetensors"):
        payload = read_checkpoint(weights)
        torch.save({k: v for k, v in payload.items()}, weights.with_suffix(".pt"))
        weights.unlink()
    for state in old.glob("fold_*/*.state.pt"):
        state.unlink()
    result = CliRunner().invoke(cli, ["predict", "--run", str(old), "--input",
                                      str(kium_root / "test_set"), "--output",
                                      str(tmp_path / "old.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "old.csv").equals(table)


def test_predict_errors(kium_root, tmp_path, cfg):
    out = tmp_path / "run"
    assert _finetune(kium_root, out, cfg).exit_code == 0
    no_csv = tmp_path / "empty"
    no_csv.mkdir()
    result = CliRunner().invoke(cli, ["predict", "--run", str(out), "--input", str(no_csv),
                                      "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "no test.csv" in result.output
    test = pd.read_csv(kium_root / "test_set" / "test.csv")
    idx = test["Index"].iloc[1]
    for p in (kium_root / "test_set").glob(f"{idx}*.jpg"):
        p.write_bytes(b"broken")
    result = CliRunner().invoke(cli, ["predict", "--run", str(out), "--input",
                                      str(kium_root), "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and f"study {idx} has no usable view" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_corrupt_training_image_needs_skip_bad(kium_root, tmp_path, cfg):
    idx = pd.read_csv(kium_root / "train_set" / "train.csv")["Index"].iloc[1]
    bad = kium_root / "train_set" / f"{idx}RI-B.jpg"
    bad.write_bytes(bad.read_bytes()[:300])
    result = _finetune(kium_root, tmp_path / "a", cfg)
    assert result.exit_code == 2 and f"{idx}RI-B.jpg" in result.output
    result = _finetune(kium_root, tmp_path / "b", cfg, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "1 images" in result.output
    flat = " ".join(result.output.split())  # the console names it, with its reason
    assert "skipped with --skip-bad: 1:" in flat and f"{idx}RI-B.jpg:" in flat
    assert "1 image(s)" in (tmp_path / "b" / "report.md").read_text()


def test_evaluate_matches_by_index_and_refuses_other_index_sets(kium_root, tmp_path):
    truth = pd.read_csv(kium_root / "groundtruth.csv")
    pred = truth.copy().astype(float)
    pred["Index"] = truth["Index"]
    pred["Aneurysm"] = np.linspace(0, 1, len(pred))
    pred.to_csv(tmp_path / "p.csv", index=False)
    pred.iloc[::-1].to_csv(tmp_path / "p_rev.csv", index=False)
    runner = CliRunner()
    a = runner.invoke(cli, ["evaluate", "--truth", str(kium_root / "groundtruth.csv"),
                            "--pred", str(tmp_path / "p.csv")])
    b = runner.invoke(cli, ["evaluate", "--truth", str(kium_root / "groundtruth.csv"),
                            "--pred", str(tmp_path / "p_rev.csv")])
    assert a.exit_code == 0 and a.output == b.output
    pred.iloc[1:].to_csv(tmp_path / "short.csv", index=False)
    c = runner.invoke(cli, ["evaluate", "--truth", str(kium_root / "groundtruth.csv"),
                            "--pred", str(tmp_path / "short.csv")])
    assert c.exit_code == 2 and "Index sets differ" in c.output


def test_resume_finishes_a_killed_run_without_redoing_epochs(kium_root, tmp_path, cfg):
    cfg = write_config(tmp_path, train={"epochs": 4})
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "aneurysm", "finetune", "--root", str(kium_root), "--out",
           str(out), "--config", str(cfg), "--folds", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    history = out / "fold_0" / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline:
        if history.is_file() and len(pd.read_csv(history)) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = pd.read_csv(history)
    assert 2 <= len(done) < 4, "the run was not killed in the middle of fold 0"
    assert not (out / "fold_0" / "summary.json").exists()
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = pd.read_csv(history)
    assert list(final["epoch"]) == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(final.iloc[:len(done)], done)
    for e in done["epoch"]:
        assert f"fold 0 epoch {e}:" not in resumed.stdout + resumed.stderr
    assert f"fold 0 epoch {len(done) + 1}:" in resumed.stdout + resumed.stderr
    assert (out / "fold_1" / "summary.json").is_file()
