"""The external adapters on fixtures written in each source's exact layout."""

import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from aneurysm_adapters.label_maps import RSNA2025, apply_rules
from aneurysm_adapters.rsna2025 import parse_coordinates
from click.testing import CliRunner

from aneurysm.cli.main import cli
from aneurysm.errors import DataError
from aneurysm.registry import get_adapter
from aneurysm.schema import LOCATION_NAMES


def _expected_counts(root):
    rsna = pd.read_csv(root / "rsna2025" / "train.csv")
    part = pd.read_csv(root / "lausanne" / "participants.tsv", sep="\t")
    adam_pos = sum(bool((d / "location.txt").read_text().strip())
                   for d in (root / "adam").iterdir())
    return {"rsna2025": (len(rsna), int(rsna["Aneurysm Present"].sum())),
            "adam": (len(list((root / "adam").iterdir())), adam_pos),
            "lausanne": (len(part), int((part["group"] == "patient").sum())),
            "cada": (len(list((root / "cada").glob("*_orig.nii.gz"))),) * 2}


def test_sources_lists_all_four_with_correct_counts(external_root):
    result = CliRunner().invoke(cli, ["sources", "--data-root", str(external_root)])
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines()
             if line.startswith("│") and line.count("│") == 7}
    for name, (cases, positives) in _expected_counts(external_root).items():
        cells = [c.strip() for c in lines[name].split("│")[1:-1]]
        assert cells[1:3] == [str(cases), str(positives)], (name, cells)


def test_label_mapping_is_printed():
    result = CliRunner().invoke(cli, ["sources", "--mapping"])
    assert result.exit_code == 0
    assert "Other Posterior Circulation" in result.output and "group" in result.output


def test_rsna_mapping_groups_unknowns_and_basilar_subtlety():
    zeros = {r.source_label: 0 for r in RSNA2025 if r.kind != "unknown"}
    m = apply_rules(RSNA2025, {**zeros, "Anterior Communicating Artery": 1,
                               "Left Infraclinoid Internal Carotid Artery": 1})
    known = dict(zip(LOCATION_NAMES, m.location_known))
    value = dict(zip(LOCATION_NAMES, m.locations))
    assert value["L_ICA"] == 1 and known["L_ICA"] and known["R_ICA"] and not value["R_ICA"]
    assert [g.members for g in m.groups] == [("L_ACOM", "R_ACOM")]
    assert not known["L_ACOM"] and not known["R_ACOM"]  # a group, not two negatives
    assert not known["L_AntChor"] and not known["R_AntChor"]  # unknown, never negative
    assert known["L_VA"] and known["BA"]  # "Other Posterior Circulation" = 0: negatives
    m = apply_rules(RSNA2025, {**zeros, "Other Posterior Circulation": 1})
    known = dict(zip(LOCATION_NAMES, m.location_known))
    assert not known["BA"] and not known["L_PCA"] and len(m.groups) == 1


def test_rsna_records_carry_modality_groups_and_localizers(external_root):
    records = get_adapter("rsna2025").load(external_root / "rsna2025")
    table = pd.read_csv(external_root / "rsna2025" / "train.csv")
    assert [r.study_id for r in records] == list(table["SeriesInstanceUID"])
    assert [r.modality for r in records] == list(table["Modality"])
    loc = pd.read_csv(external_root / "rsna2025" / "train_localizers.csv")
    assert sum(len(r.volume.localizers) for r in records) == len(loc)
    segs = [r.volume.arteries for r in records]  # every third series has Circle-of-Willis labels
    assert segs[0].endswith(f"segmentations/{records[0].study_id}_cowseg.nii")  # flat
    assert f"segmentations/{records[3].study_id}/{records[3].study_id}_cowseg.nii" in segs[3]
    assert segs[1] == segs[2] == segs[4] == ""  # per-UID folder above; none here
    assert all(bool(r.volume.artery_labels) == bool(r.volume.arteries) for r in records)


def test_coordinates_are_parsed_without_eval(tmp_path):
    assert parse_coordinates("{'x': 41.2, 'y': 77.9}", tmp_path, 2) == (41.2, 77.9, -1)
    assert parse_coordinates("{'x': 1, 'y': 2, 'f': 5}", tmp_path, 2) == (1.0, 2.0, 5)
    marker = tmp_path / "pwned"
    with pytest.raises(DataError, match="not a dict literal"):
        parse_coordinates(f"__import__('pathlib').Path('{marker}').touch()", tmp_path, 3)
    assert not marker.exists()


def test_missing_series_folder_is_named_and_skipped_only_on_request(external_root):
    root = external_root / "rsna2025"
    uid = pd.read_csv(root / "train.csv")["SeriesInstanceUID"].iloc[0]
    shutil.rmtree(root / "series" / uid)
    adapter = get_adapter("rsna2025")
    with pytest.raises(DataError, match=f"{uid}: series folder missing"):
        adapter.load(root)
    with pytest.warns(UserWarning, match="skipped"):
        records = adapter.load(root, skip_bad=True)
    assert len(records) == 4 and len(adapter.skipped) == 1


def test_adam_label_two_is_neither_positive_nor_negative(external_root):
    root = external_root / "adam"
    case = sorted(root.iterdir())[0]
    img = nib.load(case / "aneurysms.nii.gz")
    data = np.zeros(img.shape, dtype=np.uint8)
    data[5:7, 5:7, 5:7] = 2
    nib.save(nib.Nifti1Image(data, img.affine), case / "aneurysms.nii.gz")
    (case / "location.txt").write_text("")
    shutil.rmtree(case / "pre")  # falls back to orig/TOF.nii.gz
    rec = {r.study_id: r for r in get_adapter("adam").load(root)}[case.name]
    assert rec.presence is None and rec.volume.path.endswith("orig/TOF.nii.gz")
    assert rec.volume.ignore_labels == (2,)
    assert not any(rec.location_known)


def test_lausanne_and_cada_presence_and_masks(external_root):
    laus = get_adapter("lausanne").load(external_root / "lausanne")
    part = pd.read_csv(external_root / "lausanne" / "participants.tsv", sep="\t")
    assert [r.presence for r in laus] == [int(g == "patient") for g in part["group"]]
    assert all(r.volume.lesion_masks for r in laus if r.presence)
    cada = get_adapter("cada").load(external_root / "cada")
    assert all(r.presence == 1 and r.modality == "3DRA" for r in cada)


def test_empty_cada_mask_and_bad_affine_are_errors(external_root):
    root = external_root / "cada"
    mask = sorted(root.glob("*_labeledMasks.nii.gz"))[0]
    img = nib.load(mask)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine), mask)
    adapter = get_adapter("cada")
    with pytest.raises(DataError, match="empty aneurysm mask"):
        adapter.load(root)
    with pytest.warns(UserWarning):
        assert len(adapter.load(root, skip_bad=True)) == 1 and len(adapter.skipped) == 1
    image = sorted(root.glob("*_orig.nii.gz"))[1]
    data = np.asarray(nib.load(image).dataobj)
    bad = nib.Nifti1Image(data, np.eye(4))
    bad.set_qform(None, code=0)
    bad.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), code=1)  # a collapsed voxel axis
    nib.save(bad, image)
    from aneurysm.io.volumes import load_nifti

    with pytest.raises(DataError, match="not invertible"):
        load_nifti(image)
