"""Studies as library code (``aneurysm.studies``, ``aneurysm study``): every shipped study file
resolves to valid configs, arms that hash alike run once, the tables' numbers are the paired
differences of known inputs, a tiny real study runs and resumes, and mistakes are one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from aneurysm.metrics import SIZE_BINS
from aneurysm.studies.plan import arm_values, measured, plan
from aneurysm.studies.spec import Study, StudyError, load_study, study_from_mapping
from aneurysm.studies.tables import differences, markdown, mean_sd, write_tables

STUDIES = sorted((Path(__file__).resolve().parents[2] / "configs" / "studies").glob("*.yaml"))
#: tiny and fast: 32 px, one epoch, a handful of synthetic volumes, one process's threads
TINY = {"data": {"workers": 1}, "preprocess": {"image_size": 32}, "model": {"embed_dim": 32},
        "train": {"epochs": 1, "pretrain_epochs": 1, "batch_size": 4, "threads": 1}}
EXTERNAL = {"rsna": 5, "adam": 4, "lausanne": 4, "cada": 2, "topcow": 1, "spacing": 2.0}


def _cli():
    """The package's CLI with ``study`` in it (a no-op once cli/main.py registers it)."""
    from aneurysm.cli.main import cli
    from aneurysm.cli.study import study_group

    if "study" not in cli.commands:
        cli.add_command(study_group)
    return cli


def _invoke(*args: str):
    return CliRunner().invoke(_cli(), ["study", *args])


def _one_line_error(result, needle: str, alone: bool = True) -> None:
    """Exit code 2 and one line "Error: ...NEEDLE...", the last of the output (``alone``: the
    only one; else after the progress lines of what ran before)."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output and needle in lines[-1], result.output
    assert lines[-1].startswith("Error: ") and (len(lines) == 1 or not alone), result.output


def _write_study(folder: Path, name: str = "tiny", **values) -> Path:
    study = {"name": name, "kind": "pretrain", "overrides": TINY, "seeds": [0],
             "data": {"external": EXTERNAL, "val_fraction": 0.5}, "baseline": "default",
             "arms": [{"name": "default"},
                      {"name": "restated default", "overrides": {"train": {"pretrain_epochs": 1}}},
                      {"name": "half", "share": 0.5}], **values}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


# --- the shipped studies ------------------------------------------------------------------


def test_the_shipped_studies_are_there():
    names = {p.stem for p in STUDIES}
    assert {"pretrain-task", "pretrain-task-3x", "evidence-heads", "evidence-stride"} <= names


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_every_study_file_resolves_to_valid_configs_of_distinct_arms(path, tmp_path):
    from aneurysm.config import config_from_dict

    study = load_study(path)
    assert study.name == path.stem and study.baseline in [a.name for a in study.arms]
    for arm in study.arms:  # every override a real key of today's config
        config_from_dict(arm_values(study, arm, 0, {}))
    runs = [a.job.run_dir for a in plan([study], tmp_path, seeds=[0])]
    assert len(set(runs)) == len(study.arms), "two arms of one study would be the same run"


# --- arms, hashes and study files ----------------------------------------------------------


def _study(kind: str, arms: list[dict], **data) -> Study:
    return study_from_mapping({"name": "s", "kind": kind, "arms": arms, "seeds": [0, 1],
                               "data": {"external": EXTERNAL, **data}})


def test_arms_whose_resolved_configs_hash_alike_run_once(tmp_path):
    study = _study("pretrain", [
        {"name": "default"},
        {"name": "restated", "overrides": {"train": {"pretrain_epochs": 20}}},  # the default
        {"name": "longer", "overrides": {"train": {"pretrain_epochs": 21}}}])
    found = plan([study], tmp_path)
    by_arm = {(a.arm, a.seed): a.job.run_dir for a in found}
    assert by_arm["default", 0] == by_arm["restated", 0] != by_arm["longer", 0]
    assert by_arm["default", 0] != by_arm["default", 1]  # each seed its own run
    assert len(set(by_arm.values())) == 4
    # where and how fast a run happens is not what it measures
    elsewhere = plan([study], tmp_path, environment={"train": {"device": "cpu", "threads": 1},
                                                     "data": {"workers": 1}})
    assert [a.job.run_dir for a in elsewhere] == [a.job.run_dir for a in found]
    assert elsewhere[0].job.config["train"]["threads"] == 1
    assert "threads" not in measured(elsewhere[0].job.config).get("train", {})


def test_a_key_added_at_its_default_keeps_finished_runs_where_they_are(tmp_path, monkeypatch):
    from aneurysm.studies import plan as planning

    study = _study("pretrain", [{"name": "default"}, {"name": "longer", "overrides": {
        "train": {"pretrain_epochs": 21}}}])
    before = [a.job.run_dir for a in plan([study], tmp_path)]
    # a later version of the code grows a key, at its default, in the config and its defaults
    real_values, real_defaults = planning.arm_values, planning._defaults

    def grown(values):
        return {**values, "train": {**values["train"], "new_knob": 0.5}}

    monkeypatch.setattr(planning, "arm_values", lambda *a: grown(real_values(*a)))
    monkeypatch.setattr(planning, "_defaults", lambda model: grown(real_defaults(model)))
    assert [a.job.run_dir for a in plan([study], tmp_path)] == before
    assert measured(grown(real_values(study, study.arms[1], 0, {})))["train"] == {
        "pretrain_epochs": 21}  # the seed (0) and every other default drop out


def test_a_run_folder_named_by_the_whole_config_hash_is_still_used(tmp_path):
    from aneurysm.studies.plan import pretrain_key

    study = _study("pretrain", [{"name": "default"}])
    new = plan([study], tmp_path, seeds=[0])[0].job
    old_key = pretrain_key(new.config, new.share, new.val_fraction, whole=True)
    assert old_key != new.key
    (tmp_path / "seed_0" / "pretrain" / old_key).mkdir(parents=True)
    assert plan([study], tmp_path, seeds=[0])[0].job.run_dir.endswith(old_key)


def test_fine_tuning_arms_share_a_pretraining_that_hashes_alike(tmp_path):
    study = _study("finetune", [{"name": "scratch", "pretrained": False},
                                {"name": "pretrained"},
                                {"name": "pretrained, 3 epochs",
                                 "overrides": {"train": {"epochs": 3}}}],
                   kium={"patients": 10, "test": 5, "image_size": 64})
    found = {a.arm: a for a in plan([study], tmp_path, seeds=[0])}
    assert found["scratch"].pretraining is None and found["scratch"].job.init is None
    pretrainings = {found[a].pretraining.run_dir for a in ("pretrained", "pretrained, 3 epochs")}
    assert len(pretrainings) == 1  # train.epochs is fine-tuning's alone
    assert found["pretrained"].job.run_dir != found["pretrained, 3 epochs"].job.run_dir
    assert found["pretrained"].job.init == found["pretrained"].pretraining.run_dir


@pytest.mark.parametrize("change, needle", [
    ({"kind": "both"}, "kind must be one of"),
    ({"baseline": "nope"}, "baseline 'nope' is not one of the arms"),
    ({"arms": [{"name": "a"}, {"name": "a"}]}, "arm names repeat"),
    ({"arms": [{"name": "a, b"}, {"name": "a b"}]}, "would share the folder arms/a_b"),
    ({"arms": [{"name": "a", "epochs": 3}]}, "unknown keys ['epochs']"),
    ({"arms": [{"name": "a", "pretrained": False}]}, "'pretrained' is for finetune studies"),
    ({"data": {"external": {"rsna": 5, "mri": 3}}}, "data.external: unknown keys ['mri']"),
    ({"kind": "finetune"}, "a finetune study needs data.kium"),
    ({"arms": [{"name": "a", "share": 1.5}]}, "share: expected a number in (0, 1]"),
    ({"seeds": "0 1"}, "seeds must be a list of integers"),
])
def test_a_bad_study_file_is_one_line(tmp_path, change, needle):
    result = _invoke("run", str(_write_study(tmp_path, **change)), "--out", str(tmp_path / "o"))
    _one_line_error(result, needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("overrides, needle", [
    ({"model": {"cross_view": "biplane"}}, "model.cross_view was removed"),
    ({"train": {"map_focal_gamma": 0.0}}, "renamed: use loss.map_gamma"),
    ({"model": {"dense": {"widht": 32}}}, "unknown keys ['widht']"),
])
def test_an_arm_with_a_bad_override_is_one_line_naming_the_arm(tmp_path, overrides, needle):
    path = _write_study(tmp_path, arms=[{"name": "default"},
                                        {"name": "odd one", "overrides": overrides}])
    result = _invoke("run", str(path), "--out", str(tmp_path / "o"))
    _one_line_error(result, needle)
    assert "arm 'odd one'" in result.output


def test_unreadable_or_missing_study_files_are_one_line(tmp_path):
    _one_line_error(_invoke("run", str(tmp_path / "none.yaml")), "study file not found")
    (tmp_path / "bad.yaml").write_text("arms: [\n")
    _one_line_error(_invoke("run", str(tmp_path / "bad.yaml")), "not valid YAML")


def test_dry_run_lists_the_runs_for_the_seeds_asked(tmp_path):
    result = _invoke("run", str(_write_study(tmp_path)), "--seeds", "3,4", "--dry-run",
                     "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "tiny, seed 3, restated default: pretrain" in result.output
    assert "the same run as default" in result.output and "seed 0" not in result.output
    assert "4 runs for 6 arm-seeds" in result.output and not (tmp_path / "o").exists()
    spaced = _invoke("run", str(_write_study(tmp_path)), "--seeds", "3", "4", "5", "--dry-run")
    assert spaced.exit_code == 0 and "6 runs for 9 arm-seeds" in spaced.output, spaced.output
    stray = _invoke("run", str(_write_study(tmp_path)), "3", "--dry-run")
    assert stray.exit_code == 2 and "seeds go after --seeds" in stray.output


def test_a_seed_folder_drawn_with_other_sizes_is_refused(tmp_path):
    marker = tmp_path / "o" / "seed_0" / "data" / ".external.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({**EXTERNAL, "rsna": 900, "seed": 1000, "prevalence": 0.5}))
    before = marker.read_text()
    result = _invoke("run", str(_write_study(tmp_path)), "--out", str(tmp_path / "o"))
    _one_line_error(result, "use another --out", alone=False)
    assert str(marker.parent) in result.output and marker.read_text() == before
    assert not list((tmp_path / "o").glob("*.results.json"))


# --- tables ---------------------------------------------------------------------------------


def _rows() -> list[dict]:
    def row(seed, arm, adam, minutes=1.0):
        return {"seed": seed, "arm": arm, "runs": {f"{arm}-{seed}": minutes},
                "metrics": {"adam val AUROC": adam, "mean val AUROC": adam,
                            "minutes": minutes}}
    return [row(0, "default", 0.60), row(0, "b", 0.70), row(0, "c", 0.55),
            row(1, "default", 0.80), row(1, "b", 0.75)]  # c is missing in seed 1


def _table_study() -> Study:
    return study_from_mapping({"name": "t", "kind": "pretrain", "baseline": "default",
                               "arms": [{"name": "default"}, {"name": "b"}, {"name": "c"}],
                               "pairs": [{"name": "c − b", "arm": "c", "against": "b"}]})


def test_paired_differences_are_per_seed_against_the_baseline_and_the_pairs():
    found = {(d["comparison"], d["seed"]): d["difference"]
             for d in differences(_rows(), _table_study(), "mean val AUROC")}
    assert found["b − default", 0] == pytest.approx(0.10)
    assert found["b − default", 1] == pytest.approx(-0.05)
    assert found["c − default", 0] == pytest.approx(-0.05)
    assert math.isnan(found["c − default", 1])
    assert found["c − b", 0] == pytest.approx(-0.15)
    text = markdown(_table_study(), _rows())
    assert "| b − default | +0.100 | -0.050 | +0.025 |" in text
    assert "| c − default | -0.050 | n/a | -0.050 |" in text
    assert "| c − b | -0.150 | n/a | -0.150 |" in text
    assert f"| default | {mean_sd([0.6, 0.8])} |" in text and "0.700 ± 0.141" in text
    assert "seed 0 3.0, seed 1 2.0" in text  # minutes, each run once


def test_a_pair_that_restates_an_arm_against_the_baseline_is_one_row_of_one_seed_each():
    study = study_from_mapping({"name": "t", "kind": "pretrain", "baseline": "default",
                                "arms": [{"name": "default"}, {"name": "b"}, {"name": "c"}],
                                "pairs": [{"name": "b over default", "arm": "b",
                                           "against": "default"}]})
    assert [c.name for c in study.comparisons()] == ["b over default", "c − default"]
    text = markdown(study, _rows())
    assert "| b over default | +0.100 | -0.050 | +0.025 |" in text  # a cell per seed, then mean
    assert "b − default" not in text


def test_the_table_command_reads_and_rewrites_what_a_study_wrote(tmp_path):
    write_tables(tmp_path, _table_study(), _rows())
    (tmp_path / "t.md").unlink()
    result = _invoke("table", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "| b − default | +0.100 | -0.050 | +0.025 |" in result.output
    assert (tmp_path / "t.md").is_file()
    lines = (tmp_path / "t-differences.csv").read_text().splitlines()
    assert lines[0] == "comparison,arm,against,metric,seed,difference"
    assert lines[1].startswith("b − default,b,default,mean val AUROC,0,0.0999")
    summary = (tmp_path / "t-summary.csv").read_text()
    assert "default,adam val AUROC,0.7,0.1414" in summary


def test_a_study_run_one_seed_at_a_time_keeps_every_finished_seed_in_its_tables(tmp_path):
    """``--seeds 1`` into a folder that holds seed 0 redraws the tables with both seeds."""
    from aneurysm.studies.runner import run_studies

    study = load_study(_write_study(tmp_path, seeds=[0, 1]))
    out = tmp_path / "o"
    for a in plan([study], out, seeds=[0, 1]):  # every run finished, with a known score
        path = Path(a.job.run_dir) / "result.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"metrics": {
            "adam val AUROC": 0.5 + 0.1 * a.seed + 0.01 * len(a.arm), "minutes": 1.0}}))
    (out / "seed_7").mkdir()  # a stray seed folder without runs is left out, not an error
    for seeds in ([0], [1]):
        found = run_studies([study], out, seeds=seeds, log=lambda *_: None)
        assert sorted({r["seed"] for r in found[0][1]}) == [0, 1]
    saved = json.loads((out / "tiny.results.json").read_text())
    assert sorted({r["seed"] for r in saved["rows"]}) == [0, 1]
    assert "| seed 0 | seed 1 |" in (out / "tiny.md").read_text()


def test_the_table_of_a_folder_without_results_is_one_line(tmp_path):
    _one_line_error(_invoke("table", str(tmp_path)), "no study results")


# --- finished runs ----------------------------------------------------------------------------


def test_an_unreadable_run_is_one_line(tmp_path):
    _one_line_error(_invoke("diagnose", str(tmp_path)),
                    "no config.yaml; is this a finished `aneurysm pretrain` run?")
    for name in ("splits.json", "records.json", "pretrained.safetensors"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "config.yaml").write_text("train: [\n")
    _one_line_error(_invoke("by-size", str(tmp_path)), "not valid YAML")


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> tuple[Path, object]:
    """A real study, run once: three arms, two of which hash alike, one seed, tiny data."""
    folder = tmp_path_factory.mktemp("study")
    out = folder / "out"
    return out, _invoke("run", str(_write_study(folder)), "--out", str(out))


def test_a_tiny_study_runs_each_distinct_arm_once_and_resumes(tiny_study):
    out, result = tiny_study
    assert result.exit_code == 0, result.output
    assert "2 runs for 3 arm-seeds (0 kept from before)" in result.output
    assert len(list((out / "seed_0" / "pretrain").iterdir())) == 2
    arms = out / "seed_0" / "arms"
    assert (arms / "default").resolve() == (arms / "restated_default").resolve()
    payload = json.loads((out / "tiny.results.json").read_text())
    rows = {r["arm"]: r["metrics"] for r in payload["rows"]}
    assert set(rows) == {"default", "restated default", "half"}
    assert rows["default"] == rows["restated default"]
    assert all(0.0 <= v <= 1.0 for k, v in rows["half"].items()
               if k != "minutes" and not math.isnan(v))
    assert "| restated default − default | +0.000 | +0.000 |" in (out / "tiny.md").read_text()
    again = _invoke("run", str(out.parent / "tiny.yaml"), "--out", str(out))
    assert again.exit_code == 0 and "(2 kept from before)" in again.output


def test_a_finished_run_loads_back_and_its_analyses_run(tiny_study, tmp_path):
    from aneurysm.studies.runs import load_run

    out, result = tiny_study
    assert result.exit_code == 0, result.output
    run = out / "seed_0" / "arms" / "default"
    loaded = load_run(run)
    n = len(loaded.arrays.study_ids)
    assert loaded.val.shape == loaded.presence.shape == (n,) and 0 < loaded.val.sum() < n
    assert loaded.maps.shape[:2] == loaded.view_logits.shape == loaded.arrays.view_mask.shape
    assert set(loaded.source) >= {"adam", "lausanne", "rsna2025"}

    found = tmp_path / "diagnosis.json"
    quick = _invoke("diagnose", str(run), "--patch", "8", "--epochs", "1", "--json", str(found))
    assert quick.exit_code == 0, quick.output
    assert "patch CNN" in quick.output and "max over views − noisy-OR" in quick.output
    (figures,) = json.loads(found.read_text())
    assert set(figures["pooling"]) == {"adam", "lausanne", "rsna2025"}
    assert figures["patches"]["counts"]["train negative"] > 0

    sizes = tmp_path / "sizes.json"
    by_size = _invoke("by-size", str(run), "--json", str(sizes))
    assert by_size.exit_code == 0, by_size.output
    (bins,) = json.loads(sizes.read_text())
    splits = json.loads((run / "splits.json").read_text())
    records = {r["study_id"]: r for r in json.loads((run / "records.json").read_text())["records"]}
    for source in ("adam", "lausanne"):  # every validation aneurysm case falls in one bin
        val = [records[s] for s in splits[source]["val"]]
        assert bins[source]["all sizes: cases"] == sum(r["presence"] == 1 for r in val)
        assert bins[source]["negatives"] == sum(r["presence"] == 0 for r in val)
        assert sum(bins[source][f"{t}: cases"] for t in ("under 2 mm", "2-3 mm", "3-4.5 mm", "4.5 mm or more")) == \
            bins[source]["all sizes: cases"]

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.yaml", "splits.json", "records.json"):
        (broken / name).write_bytes((run / name).read_bytes())
    (broken / "pretrained.safetensors").write_bytes(b"not a checkpoint")
    _one_line_error(_invoke("diagnose", str(broken), "--no-patches"),
                    "not a readable checkpoint")


@pytest.mark.slow
def test_a_fine_tuning_study_runs_in_two_processes(tmp_path):
    path = _write_study(
        tmp_path, kind="finetune", baseline="pretrained",
        data={"external": EXTERNAL, "kium": {"patients": 10, "test": 5, "image_size": 64},
              "folds": 2},
        arms=[{"name": "scratch", "pretrained": False}, {"name": "pretrained"}])
    result = _invoke("run", str(path), "--out", str(tmp_path / "o"), "--jobs", "2")
    assert result.exit_code == 0, result.output
    rows = {r["arm"]: r["metrics"]
            for r in json.loads((tmp_path / "o" / "tiny.results.json").read_text())["rows"]}
    assert not math.isnan(rows["scratch"]["held-out AUROC"])
    for label, *_ in SIZE_BINS:  # the synthetic truth knows every size
        assert f"held-out AUROC, {label}" in rows["scratch"]
    table = (tmp_path / "o" / "tiny.md").read_text()
    assert "Paired differences per seed, held-out AUROC, 2-3 mm" in table
    assert "pretraining: adam val AUROC" in rows["pretrained"]
    assert "pretraining: adam val AUROC" not in rows["scratch"]
    splits = list((tmp_path / "o" / "seed_0").glob("splits_*.json"))
    assert len(splits) == 1
    for run in (tmp_path / "o" / "seed_0" / "finetune").iterdir():  # both arms, the same folds
        assert (run / "splits.json").read_text() == splits[0].read_text()


def test_aneurysm_size_is_the_largest_mask_component_as_a_sphere(tmp_path):
    import nibabel as nib

    from aneurysm.studies.by_size import largest_radius

    grid = np.indices((40, 40, 40)).astype(float)

    def ball(centre, r):
        return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= r * r
    mask = np.zeros((40, 40, 40), np.uint8)
    mask[ball((10, 10, 10), 6)] = 1     # 6 voxels = 3 mm at 0.5 mm: the largest aneurysm
    mask[ball((30, 30, 30), 3)] = 1     # a smaller one, not counted
    mask[ball((10, 30, 20), 8)] = 2     # a larger region with an ignored label
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "m.nii.gz")
    assert abs(largest_radius([str(tmp_path / "m.nii.gz")], ignore=[2]) - 3.0) < 0.1
    assert abs(largest_radius([str(tmp_path / "m.nii.gz")], ignore=[]) - 4.0) < 0.1
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), affine), tmp_path / "e.nii.gz")
    assert math.isnan(largest_radius([str(tmp_path / "e.nii.gz")], ignore=[]))


def test_the_study_command_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, aneurysm.cli.study, aneurysm.studies.runner, aneurysm.studies.tables; "
            "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_study_errors_are_the_package_s_user_errors():
    from aneurysm.errors import AneurysmError

    assert issubclass(StudyError, AneurysmError)


@pytest.mark.parametrize("name, folder", [("default", "default"), ("second look", "second_look"),
                                          ("pretrained, DRR + arteries", "pretrained_DRR_arteries"),
                                          ("a third, lr 0.005", "a_third_lr_0.005"),
                                          ("dense/global (x)", "dense_global_x"), (", ", "arm")])
def test_an_arms_folder_name_needs_no_quoting(name, folder):
    from aneurysm.studies.spec import arm_folder

    assert arm_folder(name) == folder
