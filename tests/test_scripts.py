"""The measuring scripts still run against today's library (they broke once, silently, when the
arrays gained fields). Runs are tiny; no timing is asserted here: timing belongs to the scripts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.mark.parametrize("extra", [[], ["--projected"], ["--head", "global"]])
def test_benchmark_runs_every_loop_and_writes_its_json(tmp_path, extra):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "benchmark.py"), "--image-size", "32",
                           "--batch-size", "2", "--steps", "1", "--rounds", "1", "--threads", "1",
                           "--json", str(out), *extra], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result["views_per_second"]) == {"bare PyTorch loop", "ours, no augmentation",
                                               "ours, with augmentation"}
    assert all(v[0] > 0 for v in result["views_per_second"].values())


def test_evidence_script_knows_its_studies():
    proc = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_evidence.py"), "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "heads" in proc.stdout and "projection" in proc.stdout
