"""The demo's own path, small: synthesis, check, pretraining, fine-tuning, prediction and the
held-out score with its AUROC by size, as `aneurysm demo` runs them."""

import json

import pytest
from click.testing import CliRunner

from aneurysm.cli.main import cli
from aneurysm.config import load_config
from aneurysm.synth.external import ExternalSynthConfig
from aneurysm.workflows.demo import run_demo
from conftest import write_config

pytestmark = pytest.mark.slow  # the whole pipeline, at toy sizes


def test_a_small_demo_runs_every_step_and_scores_by_size(tmp_path):
    cfg = write_config(tmp_path, train={"epochs": 1, "pretrain_epochs": 1})
    external = ExternalSynthConfig(rsna=3, adam=3, lausanne=3, cada=1, topcow=0, spacing=2.0)
    result = run_demo(tmp_path / "demo", patients=16, test=8, render_size=96, folds=2,
                      config=load_config(cfg), external=external, progress=False,
                      log=lambda *a: None)
    assert len(result.steps) == 8 and result.pretrain_scores
    assert (tmp_path / "demo" / "run" / "report.html").is_file()
    assert (tmp_path / "demo" / "output.csv").is_file() and result.maps.is_dir()
    positives = sum(s.positives for s in result.by_size)
    assert positives == result.held_out.n - result.by_size[0].negatives > 0
    saved = json.loads((tmp_path / "demo" / "run" / "evaluation.json").read_text())
    assert [s["label"] for s in saved["by_size"]] == [s.label for s in result.by_size]
    again = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo")])
    assert again.exit_code == 2 and "--force" in again.output  # never overwritten silently
