"""The benchmark scripts still run against today's library (they broke once, silently, when the
arrays gained fields). Runs are tiny; no timing is asserted here: timing belongs to the scripts.
The studies that once lived here as scripts are library code now: tests/test_studies.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _bench(tmp_path, *extra) -> dict:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "benchmark.py"), "--image-size", "32",
                           "--batch-size", "2", "--steps", "1", "--rounds", "1", "--threads", "1",
                           "--work", str(tmp_path / "work"), "--json", str(out), *extra],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("extra", [["--projected"], ["--model", "global"]])
def test_benchmark_runs_every_loop_and_writes_its_json(tmp_path, extra):
    result = _bench(tmp_path, "--only", "training", *extra)["sections"]
    assert set(result) == {"training"}
    rates = result["training"]["views_per_second"]
    assert set(rates) == {"bare PyTorch loop", "ours, no augmentation", "ours, with augmentation"}
    assert all(v[0] > 0 for v in rates.values())
    assert result["training"]["flops_per_step"] > 0


@pytest.mark.slow
def test_benchmark_measures_every_section_on_real_files(tmp_path):
    result = _bench(tmp_path, "--patients", "4", "--source-size", "64",
                    "--dicom-shape", "64,64,20")
    s = result["sections"]
    assert set(s) == {"training", "loader", "memory", "io", "inference"}
    assert s["loader"]["studies"] == 20 and s["loader"]["headroom"] > 0
    assert s["loader"]["arrays_bytes_per_study"] >= 8 * 32 * 32  # 8 views of 32 px at least
    assert set(map(int, s["memory"]["peak_rss_mb"])) == {4, 20}  # N and 5N
    assert s["io"]["shape"] == [64, 64, 20] and s["io"]["read_ratio"] > 0
    assert s["inference"]["patients"] == 4 and s["inference"]["folds_ensembled"] == 2
    # the export extra is installed here: the exported predictor is timed beside torch
    assert s["inference"]["export_s"] > 0
    assert all(t > 0 for t in s["inference"]["onnxruntime_s_per_patient"])
