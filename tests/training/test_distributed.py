"""Scale-out and step-size options: torchrun with gloo on the CPU, gradient accumulation,
``--batch-size auto`` and precision, each against a plain single-process run.

The model here has no batch-dependent layer (a ConvNeXt with LayerNorm, no dropout) and
augmentation is off, so two processes with half the batch each, or two accumulated halves,
must follow the same path as one process with the whole batch, up to float summation order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import write_config
from safetensors.torch import load_file

from aneurysm.cli.main import cli
from aneurysm.model.checkpoint import read_checkpoint

pytestmark = pytest.mark.slow  # torchrun processes and full training runs


@pytest.fixture
def exact_cfg(tmp_path) -> Path:
    return write_config(tmp_path, "exact.yaml",
                        model={"name": "global", "global": {"backbone": "timm/test_convnext"},
                               "dropout": 0.0},
                        augment={"enabled": False}, train={"lr": 0.003})


def _args(root, out, cfg, *extra) -> list[str]:
    # 5 folds of 10 patients: 8 training patients, two full steps of 4 per epoch
    return ["finetune", "--root", str(root), "--out", str(out), "--config", str(cfg),
            "--folds", "5", *extra]


def _oof(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "oof.csv").sort_values("study_id").reset_index(drop=True)


def _single(root, out, cfg, *extra) -> pd.DataFrame:
    result = CliRunner().invoke(cli, _args(root, out, cfg, *extra))
    assert result.exit_code == 0, result.output
    return _oof(out)


def test_two_gloo_processes_match_one_process(kium_root, tmp_path, exact_cfg):
    one = _single(kium_root, tmp_path / "one", exact_cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = tmp_path / "two"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "aneurysm", *_args(kium_root, run, exact_cfg)],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    two = _oof(run)
    assert list(two["study_id"]) == list(one["study_id"])  # every patient once, out of fold
    # AUROC comes from all ranks' predictions gathered: the same rows, the same numbers
    assert np.allclose(two["presence_prob"], one["presence_prob"], atol=2e-3), \
        np.abs(two["presence_prob"] - one["presence_prob"]).max()
    probs = [c for c in one.columns if c.endswith("_prob")]
    assert np.allclose(two[probs], one[probs], atol=2e-3)
    h1 = pd.read_csv(tmp_path / "one" / "fold_0" / "history.csv")
    h2 = pd.read_csv(run / "fold_0" / "history.csv")
    assert np.allclose(h1["train_loss"], h2["train_loss"], rtol=1e-3)
    assert np.allclose(h1["val_loss"], h2["val_loss"], rtol=1e-3)
    # rank 0 alone wrote, checkpoints carry no DDP prefix, and the run says how it ran
    state = read_checkpoint(run / "fold_0" / "best.safetensors")["state_dict"]
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in state)
    assert json.loads((run / "meta.json").read_text())["processes"] == 2
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in (tmp_path / "one")
                                                           .iterdir())
    assert proc.stdout.count("run folder:") == 1  # one report, from rank 0


def test_accumulated_half_batches_match_the_whole_batch(kium_root, tmp_path, exact_cfg):
    whole = _single(kium_root, tmp_path / "whole", exact_cfg)
    halves = _single(kium_root, tmp_path / "halves", exact_cfg, "--accumulate", "2")
    assert np.allclose(whole["presence_prob"], halves["presence_prob"], atol=2e-3)
    assert not np.allclose(whole["presence_prob"], 0.5, atol=1e-3)  # it did learn something


def test_step_options_are_checked_and_recorded(kium_root, tmp_path, exact_cfg):
    bad = CliRunner().invoke(cli, _args(kium_root, tmp_path / "bad", exact_cfg,
                                        "--accumulate", "3"))
    assert bad.exit_code == 2 and "does not split evenly" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "bad").exists()  # refused first
    fp16 = CliRunner().invoke(cli, _args(kium_root, tmp_path / "fp16", exact_cfg,
                                         "--precision", "fp16"))
    assert fp16.exit_code == 2 and "CUDA" in fp16.output and "bf16" in fp16.output
    word = CliRunner().invoke(cli, _args(kium_root, tmp_path / "w", exact_cfg,
                                         "--batch-size", "many"))
    assert word.exit_code == 2 and "auto" in word.output

    auto = tmp_path / "auto"
    result = CliRunner().invoke(cli, _args(kium_root, auto, exact_cfg, "--batch-size", "auto",
                                           "--precision", "bf16", "--epochs", "1"))
    assert result.exit_code == 0, result.output
    assert "batch size auto" in result.output
    chosen = read_checkpoint(auto / "fold_0" / "last.safetensors")["batch_size"]
    assert 1 <= chosen <= 8  # a power of two, no more than the fold's training patients
    assert chosen & (chosen - 1) == 0
    assert len(_oof(auto)) == 10


def test_compiled_model_trains_like_the_eager_one(kium_root, tmp_path):
    """``--compile`` on the default (dense) model: the same predictions, plain checkpoints.
    (It once failed on the decoder's zero-width replicate pad in channels-last memory, and
    warned on the masked in-place write of the present views' maps.)"""
    cfg = write_config(tmp_path, train={"epochs": 1})
    eager = _single(kium_root, tmp_path / "eager", cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = _single(kium_root, tmp_path / "compiled", cfg, "--compile")
    # a backward that dynamo cannot trace warns "Error detected in ...Backward0"
    assert not [w for w in caught if "Error detected in" in str(w.message)]
    assert np.allclose(eager["presence_prob"], compiled["presence_prob"], atol=1e-4)
    state = load_file(tmp_path / "compiled" / "fold_0" / "best.safetensors")  # as saved
    assert not any("_orig_mod" in k for k in state)


def test_loader_worker_processes_change_nothing_but_who_slices(kium_root, tmp_path):
    """train.loader_workers moves slicing and collating into worker processes that persist over
    the epochs; the batches, the augmentation draws and the dropout draws stay the same."""
    base = {"model": {"name": "global", "global": {"backbone": "timm/test_convnext"},
                      "dropout": 0.3},
            "train": {"lr": 0.003, "epochs": 2}}
    runs = {}
    for workers in (0, 2):
        cfg = write_config(tmp_path, f"w{workers}.yaml", model=base["model"],
                           train={**base["train"], "loader_workers": workers})
        runs[workers] = _single(kium_root, tmp_path / f"w{workers}", cfg)
    probs = [c for c in runs[0].columns if c.endswith("_prob")]
    assert np.allclose(runs[0][probs], runs[2][probs], atol=1e-5)
    h0 = pd.read_csv(tmp_path / "w0" / "fold_0" / "history.csv")
    h2 = pd.read_csv(tmp_path / "w2" / "fold_0" / "history.csv")
    assert len(h0) == 2 and np.allclose(h0["train_loss"], h2["train_loss"], rtol=1e-5)
