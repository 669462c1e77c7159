"""Handing a model over: tracked fine-tuning, the model card, ONNX export, and the exported
predictor in a virtual environment that holds only onnxruntime, numpy, pillow and pandas."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from aneurysm.cli.main import cli

pytestmark = pytest.mark.slow  # fine-tunes, exports and builds a virtual environment

PREDICTOR_ONLY = ("onnxruntime", "numpy", "pillow", "pandas")


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _fresh_venv(folder: Path) -> Path:
    """A virtual environment with the predictor's four packages and nothing else."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--disable-pip-version-check", *PREDICTOR_ONLY], check=True)
    return python


def _tracked_figures(run: Path) -> tuple[dict, dict, dict]:
    """{(tag, step): value} from the TensorBoard event files and from the MLflow store, and the
    MLflow run's parameters."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    board = {(tag, e.step): e.value for tag in events.Tags()["scalars"]
             for e in events.Scalars(tag)}
    client = MlflowClient(f"sqlite:///{(run / 'mlflow.db').resolve()}")
    run_id = json.loads((run / "tracking.json").read_text())["mlflow_run_id"]
    data = client.get_run(run_id).data
    mlflow = {(key, m.step): m.value for key in data.metrics
              for m in client.get_metric_history(run_id, key)}
    return board, mlflow, data.params


def test_tracked_run_exports_to_a_predictor_that_needs_only_four_packages(kium_root, tmp_path,
                                                                         cfg):
    run, export = tmp_path / "run", tmp_path / "export"
    result = _invoke("finetune", "--root", kium_root, "--out", run, "--config", cfg,
                     "--folds", 2, "--track", "tensorboard", "--track", "mlflow")
    assert result.exit_code == 0, result.output

    # every figure of every fold's history.csv reached both trackers, at its epoch
    board, mlflow, params = _tracked_figures(run)
    for k in (0, 1):
        history = pd.read_csv(run / f"fold_{k}" / "history.csv")
        for row in history.to_dict("records"):
            for field, value in row.items():
                if field == "epoch":
                    continue
                key = (f"fold_{k}/{field}", int(row["epoch"]))
                for store in (board, mlflow):
                    assert key in store, key
                    assert (math.isnan(value) and math.isnan(store[key])) or \
                        store[key] == pytest.approx(value, rel=1e-6), key
    report = json.loads((run / "report.json").read_text())
    assert mlflow[("final/cv_auroc", 0)] == pytest.approx(report["presence"]["value"])
    assert params["train.seed"] == "7" and params["preprocess.image_size"] == "32"

    # the model card: filled from the run, then from its held-out score
    card = (run / "MODEL_CARD.md").read_text()
    for section in ("## Model details", "## Intended use", "## Training data",
                    "## Training procedure", "## Evaluation", "## Limitations and risks"):
        assert section in card
    assert "no clinical claim" in card and "**Synthetic:**" in card
    assert "10 patients, 5 with an aneurysm" in card
    low, high = report["presence"]["low"], report["presence"]["high"]
    assert f"{report['presence']['value']:.3f} [{low:.3f}, {high:.3f}]" in card
    assert "Not scored." in card

    # a shuffled test set with a missing view, as the organisers' might be
    test_dir = kium_root / "test_set"
    table = pd.read_csv(test_dir / "test.csv").iloc[::-1]
    table.to_csv(test_dir / "test.csv", index=False)
    (test_dir / f"{table['Index'].iloc[0]}RV-A.jpg").unlink()
    ours_prob, ours = tmp_path / "ours_prob.csv", tmp_path / "ours.csv"
    assert _invoke("predict", "--run", run, "--input", test_dir, "--output", ours_prob,
                   "--locations", "prob").exit_code == 0
    assert _invoke("predict", "--run", run, "--input", test_dir, "--output", ours).exit_code == 0
    result = _invoke("evaluate", "--truth", kium_root / "groundtruth.csv", "--pred", ours,
                     "--run", run, "--bootstrap", 200)
    assert result.exit_code == 0, result.output
    card = (run / "MODEL_CARD.md").read_text()
    held_out = json.loads((run / "evaluation.json").read_text())
    assert "Not scored." not in card and f"{held_out['presence']['value']:.3f}" in card
    assert held_out["by_size"] and "| largest aneurysm |" in card

    result = _invoke("export", run, "--format", "onnx", "--out", export)
    assert result.exit_code == 0, result.output
    for name in ("fold_0.onnx", "fold_1.onnx", "model.json", "predict.py", "requirements.txt",
                 "MODEL_CARD.md"):
        assert (export / name).is_file(), name
    assert "predict.py" in (export / "MODEL_CARD.md").read_text()
    again = _invoke("export", run, "--out", export)
    assert again.exit_code == 2 and "--force" in again.output
    folds_gone = tmp_path / "untrained"
    folds_gone.mkdir()
    (folds_gone / "config.yaml").write_text((run / "config.yaml").read_text())
    refused = _invoke("export", folds_gone, "--out", tmp_path / "none")
    assert refused.exit_code == 2 and "no fold models" in refused.output
    assert len(refused.output.strip().splitlines()) == 1 and not (tmp_path / "none").exists()

    python = _fresh_venv(tmp_path / "venv")
    bare = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert "No module named 'torch'" in bare.stderr  # nothing of the full stack is there
    for flag, out in (("prob", tmp_path / "onnx_prob.csv"), ("binary", tmp_path / "onnx.csv")):
        done = subprocess.run([str(python), str(export / "predict.py"), "--input",
                               str(test_dir), "--output", str(out), "--locations", flag],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "1 patient(s) predicted from fewer than 8 views" in done.stderr
    a, b = pd.read_csv(ours_prob), pd.read_csv(tmp_path / "onnx_prob.csv")
    assert list(a.columns) == list(b.columns) and list(a["Index"]) == list(b["Index"])
    assert np.abs(a.iloc[:, 1:].to_numpy() - b.iloc[:, 1:].to_numpy()).max() <= 1e-4
    a, b = pd.read_csv(ours), pd.read_csv(tmp_path / "onnx.csv")
    assert (a.iloc[:, 2:].to_numpy() == b.iloc[:, 2:].to_numpy()).all()
    assert np.abs(a["Aneurysm"] - b["Aneurysm"]).max() <= 1e-4

    maps = subprocess.run([str(python), str(export / "predict.py"), "--input", str(test_dir),
                           "--output", str(tmp_path / "m.csv"), "--maps"],
                          capture_output=True, text=True)
    assert maps.returncode == 2 and "needs the full aneurysm package" in maps.stderr
    assert "Traceback" not in maps.stderr and not (tmp_path / "m.csv").exists()
