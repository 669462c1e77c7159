"""3-D -> 2-D projection (views, positions, cache) and pretrain -> finetune --init, end to end."""

import json
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from click.testing import CliRunner
from pydicom.uid import generate_uid
from conftest import write_config

from aneurysm.cli.main import cli
from aneurysm.config import load_config
from aneurysm.errors import AneurysmError
from aneurysm.io.images import load_grayscale
from aneurysm.model import build_model
from aneurysm.model.checkpoint import load_init, read_checkpoint
from aneurysm.projection import ProjectionConfig, project_records
from aneurysm.projection.stage import read_positions
from aneurysm.registry import get_adapter
from aneurysm.schema import KIUM_VIEW_NAMES

pytestmark = pytest.mark.slow  # projects and pretrains end to end


def _records(root):
    return [r for s in ("rsna2025", "adam", "lausanne", "cada")
            for r in get_adapter(s).load(root / s)]


def test_projection_renders_the_eight_k_ium_views_with_aneurysm_positions(external_root,
                                                                          tmp_path):
    records = _records(external_root)
    result = project_records(records, tmp_path / "cache", workers=1, progress=False)
    assert len(result.records) == len(records) and not result.skipped
    dark_at_marks = []
    for r in result.records:
        assert tuple(v.view for v in r.views) == KIUM_VIEW_NAMES
        present = [v for v in r.views if v.present]
        assert present  # a 3DRA of one injection shows one territory; others all eight
        if r.source != "cada":
            assert len(present) == 8, f"{r.source} {r.study_id}: {r.missing_views} absent"
        for view in present:
            image = load_grayscale(view.path)
            assert 190 <= np.median(image) <= 215  # light grey, like DSA
            for p in read_positions(r):
                if p["view"] == view.view:
                    x, y = int(round(p["x"])), int(round(p["y"]))
                    patch = image[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3]
                    dark_at_marks.append(patch.min() < np.median(image) - 40)
        if r.presence == 1 and r.source in ("cada", "lausanne"):
            assert read_positions(r), f"{r.source} {r.study_id}: positive without positions"
    assert dark_at_marks and np.mean(dark_at_marks) > 0.8  # the aneurysm sits on a vessel


def test_projection_cache_is_keyed_by_content_and_parameters(external_root, tmp_path):
    records = [r for r in _records(external_root) if r.source == "cada"]
    first = project_records(records, tmp_path / "c", workers=1, progress=False).records
    views = [v for v in first[0].views if v.present]
    stamp = [(tmp_path / v.path).stat().st_mtime_ns for v in views]
    again = project_records(records, tmp_path / "c", workers=1, progress=False).records
    assert [v.path for v in again[0].views] == [v.path for v in first[0].views]
    assert [(tmp_path / v.path).stat().st_mtime_ns for v in views] == stamp
    other = project_records(records, tmp_path / "c", ProjectionConfig(mu_per_mm=0.2),
                            workers=1, progress=False).records
    assert [v.path for v in other[0].views if v.present] != [v.path for v in views]


def test_cta_bone_is_suppressed(external_root, tmp_path):
    cta = [r for r in get_adapter("rsna2025").load(external_root / "rsna2025")
           if r.modality == "CTA"]
    if not cta:
        pytest.skip("this fixture drew no CTA series")
    views = project_records(cta[:1], tmp_path / "c", workers=1, progress=False).records[0]
    image = load_grayscale(views.view_path("LI-A"))
    # without suppression the skull would dominate: nearly every column would be dark
    assert (image < 120).mean() < 0.2


def _as_exported(external_root):
    """An RSNA series folder as an archive exports it (a scout image beside the axial slices,
    one instance sent twice), and one unreadable Lausanne volume."""
    series = sorted((external_root / "rsna2025" / "series").iterdir())[0]
    first = sorted(series.iterdir())[0]
    scout = pydicom.dcmread(first)
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    scout.save_as(series / "scout.dcm", enforce_file_format=True)
    shutil.copy(first, series / "resent.dcm")
    broken = sorted((external_root / "lausanne").rglob("*_angio.nii.gz"))[0]
    broken.write_bytes(broken.read_bytes()[:200])
    return series, broken


def test_pretrain_then_finetune_init_end_to_end(external_root, kium_root, tmp_path, cfg):
    series, broken = _as_exported(external_root)
    runner = CliRunner()
    pre = runner.invoke(cli, ["pretrain", "--source", "external", "--data-root",
                              str(external_root), "--config", str(cfg), "--out",
                              str(tmp_path / "pre"), "--lr", "0.0031", "--skip-bad"])
    assert pre.exit_code == 0, pre.output
    # the console names what --skip-bad skipped and what reading set aside; the records hold it
    flat = " ".join(pre.output.split())
    assert "skipped with --skip-bad: 1:" in flat and broken.name in flat
    assert "decided while reading volumes (e.g. DICOM files set aside): 2:" in flat
    issues = json.loads((tmp_path / "pre" / "pretrain_report.json").read_text())
    assert len(issues["skipped"]) == 1 and broken.name in issues["skipped"][0]
    decided = sorted(d.split(": ", 1)[1].split(" (")[0] for d in issues["decisions"])
    assert decided == ["duplicate instance", "localizer"]
    assert all(str(series) in d for d in issues["decisions"])
    assert pd.read_csv(tmp_path / "pre" / "history.csv")["lr"].iloc[0] == pytest.approx(0.0031)
    for name in ("adam", "cada", "lausanne", "rsna2025", "topcow"):
        assert name in pre.output
    ckpt = read_checkpoint(tmp_path / "pre" / "pretrained.safetensors")
    meta = ckpt["metadata"]
    assert meta["model"]["model"] == "dense" and meta["image_size"] == 32
    assert meta["sources"] == {"adam": 4, "cada": 2, "lausanne": 4, "rsna2025": 5, "topcow": 2}
    assert len(meta["labels"]) == 21 and "projection" in meta and "torch" in meta["versions"]
    # patient data hygiene: the RSNA DICOMs carry (fake) identifiers; no artefact holds them
    from aneurysm.synth.dicom_writer import (
        FAKE_BIRTH_DATE,
        FAKE_PATIENT_ID,
        FAKE_PATIENT_NAME,
    )

    scanned = 0
    for folder in (tmp_path / "pre", tmp_path / "cache"):
        for path in folder.rglob("*"):
            if path.is_file():
                data, scanned = path.read_bytes(), scanned + 1
                for secret in (FAKE_PATIENT_ID, FAKE_PATIENT_NAME, FAKE_BIRTH_DATE):
                    assert secret.encode() not in data, (path, secret)
    assert scanned > 50
    # fine-tuning starts from every pretrained weight: body, map and location heads alike
    config = load_config(cfg)
    model = build_model(config.model)
    skipped = load_init(model, tmp_path / "pre" / "pretrained.safetensors",
                        {"model": config.model.architecture(), "image_size": 32})
    assert skipped == []
    assert set(model.state_dict()) == set(ckpt["state_dict"])
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt["state_dict"][key]), key
    splits = json.loads((tmp_path / "pre" / "splits.json").read_text())
    for name, s in splits.items():  # split per source before pooling, patient-disjoint
        assert not set(s["train"]) & set(s["val"])
        # every source with two patients or more is represented in validation; TopCoW's one
        # patient (a CTA and an MRA) cannot be on both sides, so it trains
        assert bool(s["val"]) == (name != "topcow"), name

    ft = runner.invoke(cli, ["finetune", "--root", str(kium_root), "--config", str(cfg),
                             "--folds", "2", "--out", str(tmp_path / "ft"), "--init",
                             str(tmp_path / "pre" / "pretrained.safetensors"), "--lr", "0.0017"])
    assert ft.exit_code == 0, ft.output
    assert pd.read_csv(tmp_path / "ft" / "fold_0" / "history.csv")["lr"].iloc[0] == \
        pytest.approx(0.0017)
    meta = json.loads((tmp_path / "ft" / "meta.json").read_text())
    assert meta["init"].endswith("pretrained.safetensors")

    cfg = write_config(tmp_path, "size48.yaml", preprocess={"image_size": 48})
    bad = runner.invoke(cli, ["finetune", "--root", str(kium_root), "--config", str(cfg),
                              "--folds", "2", "--out", str(tmp_path / "ft2"), "--init",
                              str(tmp_path / "pre" / "pretrained.safetensors")])
    assert bad.exit_code == 2
    assert "image_size: checkpoint has 32, this run uses 48" in bad.output


def test_a_learning_curve_trains_on_a_share_and_validates_on_the_same_cases(external_root,
                                                                          tmp_path, cfg):
    from aneurysm.sources import load_sources
    from aneurysm.workflows.pretrain import pretrain

    config = load_config(cfg, {"train": {"pretrain_epochs": 1, "pretrain_lr": 0.0123}})
    sources, _ = load_sources(["adam", "lausanne", "rsna2025"], external_root)
    splits = {}
    for share in (1.0, 0.5):
        pretrain(tmp_path / str(share), sources, config, val_fraction=0.3, train_share=share,
                 progress=False)
        history = pd.read_csv(tmp_path / str(share) / "history.csv")
        assert history["lr"].iloc[0] == pytest.approx(0.0123)  # pretraining's own rate
        splits[share] = json.loads((tmp_path / str(share) / "splits.json").read_text())
        assert json.loads((tmp_path / str(share) / "meta.json").read_text())["train_share"] == share
    # a second C-arm pose per volume: the same validation cases, canonical views only; each
    # training volume trains once more at its other pose
    posed = load_config(cfg, {"train": {"pretrain_epochs": 1}, "projection": {"poses": 2}})
    pretrain(tmp_path / "poses", sources, posed, val_fraction=0.3, progress=False)
    splits["poses"] = json.loads((tmp_path / "poses" / "splits.json").read_text())
    for name in sources:
        full, half = splits[1.0][name], splits[0.5][name]
        assert half["val"] == full["val"] and half["val"]
        assert set(half["train"]) < set(full["train"])
        assert len(half["train"]) == max(1, round(len(full["train"]) / 2))
        two = splits["poses"][name]
        assert two["val"] == full["val"]
        assert two["train"] == full["train"] + [f"{s}#pose1" for s in full["train"]]


def test_pretrain_without_sources_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["pretrain", "--data-root", str(tmp_path)])
    assert result.exit_code == 2 and "no external source folder" in result.output
    with pytest.raises(AneurysmError):
        from aneurysm.sources import expand_sources

        expand_sources(["external"], None)
