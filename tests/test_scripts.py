"""The measuring scripts still run against today's library (they broke once, silently, when the
arrays gained fields). Runs are tiny; no timing is asserted here: timing belongs to the scripts."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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


@pytest.mark.parametrize("extra", [["--projected"], ["--head", "global"]])
def test_benchmark_runs_every_loop_and_writes_its_json(tmp_path, extra):
    result = _bench(tmp_path, "--only", "training", *extra)["sections"]
    assert set(result) == {"training"}
    rates = result["training"]["views_per_second"]
    assert set(rates) == {"bare PyTorch loop", "ours, no augmentation", "ours, with augmentation"}
    assert all(v[0] > 0 for v in rates.values())
    assert result["training"]["flops_per_step"] > 0


def test_benchmark_measures_every_section_on_real_files(tmp_path):
    result = _bench(tmp_path, "--patients", "4", "--source-size", "64",
                    "--dicom-shape", "64,64,20")
    s = result["sections"]
    assert set(s) == {"training", "loader", "memory", "io", "inference"}
    assert s["loader"]["studies"] == 16 and s["loader"]["headroom"] > 0
    assert s["loader"]["arrays_bytes_per_study"] >= 8 * 32 * 32  # 8 views of 32 px at least
    assert set(map(int, s["memory"]["peak_rss_mb"])) == {4, 16}
    assert s["io"]["shape"] == [64, 64, 20] and s["io"]["read_ratio"] > 0
    assert s["inference"]["patients"] == 4 and s["inference"]["folds_ensembled"] == 2


def test_pretraining_task_script_knows_its_arms():
    proc = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_task.py"), "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "half the external data" in proc.stdout
    bad = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_task.py"), "--arms", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_pretraining_task_report_of_an_empty_folder_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_task.py"), "--report",
                           "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1 and "no results" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pretraining_task_report_pairs_every_arm_with_the_chosen_baseline(tmp_path):
    def result(seed, arm, auroc):
        return {"seed": seed, "arm": arm, "minutes": 1.0, "train_auroc": 0.7,
                "localisation": 0.5, "val_cases": {"adam": [10, 5]},
                "per_source": {"adam": auroc, "lausanne": auroc, "rsna2025": auroc}}
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        base, other = rng.uniform(0.5, 0.9, 2)
        (tmp_path / f"seed_{seed}.json").write_text(json.dumps(
            [result(seed, "default", base), result(seed, "a third, lr 0.005", other)]))
    proc = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_task.py"), "--report",
                           "--out", str(tmp_path), "--baseline", "a third, lr 0.005"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rng = np.random.default_rng(0)
    diffs = [b - o for b, o in (rng.uniform(0.5, 0.9, 2) for _ in range(2))]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| default | +")
               or line.startswith("| default | -"))
    assert row == (f"| default | {diffs[0]:+.3f} | {diffs[1]:+.3f} | "
                   f"{np.mean(diffs):+.3f} |")
    assert "arm − a third, lr 0.005 per seed" in proc.stdout


@pytest.mark.parametrize("other", [["--rsna", "900"], ["--spacing", "0.75"]])
def test_pretraining_task_refuses_a_seed_folder_drawn_otherwise(tmp_path, other):
    from aneurysm.synth.external import ExternalSynthConfig

    marker = tmp_path / "seed_0" / "data" / ".done"
    marker.parent.mkdir(parents=True)
    # exactly what the script's defaults draw for seed 0, so only `other` differs
    default = ExternalSynthConfig(rsna=150, adam=80, lausanne=120, cada=20, topcow=10, seed=1000)
    drawn = json.dumps(dataclasses.asdict(default), sort_keys=True)
    marker.write_text(drawn)
    proc = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_task.py"), "--out",
                           str(tmp_path), "--seeds", "0", *other],
                          capture_output=True, text=True, timeout=120)  # else it would pretrain
    assert proc.returncode == 1 and "use another --out" in proc.stderr
    assert str(marker.parent) in proc.stderr and "Traceback" not in proc.stderr
    assert marker.read_text() == drawn and not list(tmp_path.glob("seed_0.json"))


def test_evidence_script_knows_its_studies():
    proc = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_evidence.py"), "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert all(study in proc.stdout for study in ("heads", "projection", "stride"))


def test_pretraining_diagnosis_runs_on_a_real_pretraining_run(external_root, tmp_path):
    from click.testing import CliRunner

    from aneurysm.cli.main import cli
    from conftest import write_config

    run = tmp_path / "pre"
    result = CliRunner().invoke(cli, ["pretrain", "--data-root", str(external_root), "--out",
                                      str(run), "--config", str(write_config(tmp_path)),
                                      "--val-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "diagnosis.json"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_diagnose.py"), str(run),
                           "--patch", "8", "--epochs", "1", "--json", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "patch CNN" in proc.stdout and "max over views" in proc.stdout
    (found,) = json.loads(out.read_text())
    assert set(found["pooling"]) == {"adam", "lausanne", "rsna2025"}
    counts = found["patches"]["counts"]
    assert counts["train positive"] > 0 and counts["train negative"] > 0
    scores = [v for part in ("pooling", "patches") for k, row in found[part].items()
              if k != "counts" for v in row.values()]
    assert all(v != v or 0.0 <= v <= 1.0 for v in scores)  # NaN where a split lacks a class
    assert all("study, + biplane rows post hoc" in row for row in found["pooling"].values())

    quick = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_diagnose.py"), str(run),
                            "--no-patches"], capture_output=True, text=True)
    assert quick.returncode == 0, quick.stderr[-2000:]
    assert "biplane rows post hoc − noisy-OR" in quick.stdout and "patch CNN" not in quick.stdout

    sizes = tmp_path / "by_size.json"
    by_size = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_by_size.py"), str(run),
                              "--json", str(sizes)], capture_output=True, text=True)
    assert by_size.returncode == 0, by_size.stderr[-2000:]
    (rows,) = json.loads(sizes.read_text())
    splits = json.loads((run / "splits.json").read_text())
    records = {r["study_id"]: r for r in json.loads((run / "records.json").read_text())["records"]}
    for source in ("adam", "lausanne"):  # every validation aneurysm case falls in one bin
        val = [records[s] for s in splits[source]["val"]]
        assert rows[source]["all sizes: cases"] == sum(r["presence"] == 1 for r in val)
        assert rows[source]["negatives"] == sum(r["presence"] == 0 for r in val)
        assert sum(rows[source][f"{t}: cases"] for t in ("< 2 mm", "2-3 mm", ">= 3 mm")) == \
            rows[source]["all sizes: cases"]
    assert "Study AUROC on validation by the largest aneurysm's radius" in by_size.stdout

    bad = subprocess.run([sys.executable, str(SCRIPTS / "pretrain_diagnose.py"), str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "is this a finished `aneurysm pretrain` run?" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_aneurysm_size_is_the_largest_mask_component_as_a_sphere(tmp_path):
    import math

    import nibabel as nib

    sys.path.insert(0, str(SCRIPTS))
    from pretrain_by_size import largest_radius

    grid = np.indices((40, 40, 40)).astype(float)
    def ball(centre, r):
        return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= r * r
    mask = np.zeros((40, 40, 40), np.uint8)
    mask[ball((10, 10, 10), 6)] = 1     # 6 voxels = 3 mm at 0.5 mm: the largest aneurysm
    mask[ball((30, 30, 30), 3)] = 1     # a smaller one, not counted
    mask[ball((10, 30, 20), 8)] = 2     # a larger region with an ignored label
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "m.nii.gz")
    radius = largest_radius([str(tmp_path / "m.nii.gz")], ignore=[2])
    assert abs(radius - 3.0) < 0.1
    assert abs(largest_radius([str(tmp_path / "m.nii.gz")], ignore=[]) - 4.0) < 0.1
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), affine), tmp_path / "e.nii.gz")
    assert math.isnan(largest_radius([str(tmp_path / "e.nii.gz")], ignore=[]))
