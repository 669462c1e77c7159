"""The angiographic projection: path lengths through a cone beam, DSA's darker aneurysm,
injection territories, the sources with artery labels, and load-time domain randomisation."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from aneurysm.errors import DataError
from aneurysm.io.images import load_grayscale
from aneurysm.io.dicom_series import load_dicom_series
from aneurysm.io.volumes import load_nifti
from aneurysm.projection import ProjectionConfig, annotations, project_records
from aneurysm.projection.drr import CArm, cone_project
from aneurysm.projection.render import project_volume
from aneurysm.projection.stage import artery_path
from aneurysm.projection.territory import grow_territories
from aneurysm.projection.volume_prep import occupancy, resample_isotropic, vessel_bright
from aneurysm.registry import get_adapter
from aneurysm.schema import ARTERIES, TERRITORIES
from aneurysm.training.augment import augment_batch
from aneurysm.training.config import AugmentConfig, DomainConfig


@pytest.mark.parametrize("diameter", [2.0, 5.0, 9.0])
def test_path_length_through_a_cylinder_matches_its_chord(diameter):
    """A cylinder across the beam, through the isocentre: along the detector it is as thick as
    its chord, magnified by sid / sod on the detector."""
    carm = CArm(sid_mm=1100, sod_mm=750, fov_mm=40, pixels=160)
    k = a = b = 81
    z, y = np.mgrid[0:k, 0:a] - 40  # slice (beam), row
    fine = 0.25  # mm per voxel: a smooth enough cylinder
    inside = ((z * fine) ** 2 + (y * fine) ** 2 <= (diameter / 2) ** 2).astype(np.float32)
    planes = torch.from_numpy(np.repeat(inside[:, :, None], b, axis=2))[None]  # along columns
    path = cone_project(planes, fine, (40, 40, 40), carm)[0].numpy()
    pitch = carm.fov_mm * carm.sid_mm / carm.sod_mm / carm.pixels
    rows = (np.arange(carm.pixels) + 0.5 - carm.pixels / 2) * pitch / (carm.sid_mm / carm.sod_mm)
    middle = path[:, carm.pixels // 2]
    for r, length in zip(rows, middle):
        if abs(r) < diameter / 2 - 0.3:  # off the rim, where voxels blur the edge
            chord = 2 * np.sqrt((diameter / 2) ** 2 - r**2)
            assert abs(length - chord) <= 0.1 * diameter + 0.15, (r, length, chord)
        elif abs(r) > diameter / 2 + 0.5:
            assert length < 1e-3


def _vessel_with_sac(sac_radius: float):
    """A straight vessel (radius 1.5 mm) up the middle, a spherical sac on its wall, 0.5 mm."""
    shape = (120, 120, 160)
    x, y, z = np.indices(shape) * 0.5
    vessel = (x - 30) ** 2 + (y - 30) ** 2 <= 1.5**2
    sac = (x - 30 - 1.5 - sac_radius * 0.8) ** 2 + (y - 30) ** 2 + (z - 40) ** 2 <= sac_radius**2
    image = np.where(vessel | sac, 500.0, 0.0).astype(np.float32)
    image += np.random.default_rng(0).random(shape).astype(np.float32)
    return image, (0.5, 0.5, 0.5), sac


@pytest.mark.parametrize("mode, darker", [("drr", True), ("mip", False)])
def test_an_aneurysm_is_darker_than_its_vessel_on_dsa_not_on_a_mip(mode, darker):
    image, spacing, sac = _vessel_with_sac(3.0)
    config = ProjectionConfig(mode=mode, pixels=128, spacing_mm=0.5, fov_mm=60,
                              territories=False)
    out = project_volume(image, spacing, "3DRA", config)
    view = out.views["LI-B"].astype(float)  # lateral: the sac lies beside the vessel
    dark = np.sort(view.ravel())
    sac_level = dark[:20].mean()  # the darkest pixels: the sac's centre, if it is darkest
    vessel_rows = view[view.shape[0] // 4: view.shape[0] // 3]  # far above the sac
    vessel_level = vessel_rows.min(axis=1).mean()
    if darker:
        assert sac_level < vessel_level - 20
    else:
        assert abs(sac_level - vessel_level) < 8


def test_left_carotid_territory_holds_no_right_or_posterior_artery(external_root):
    records = get_adapter("topcow").load(external_root / "topcow")
    assert records
    for record in records:
        volume = load_nifti(record.volume.path)
        ids, seeds = annotations.arteries(record, volume)
        s = 1.5
        iso = resample_isotropic(volume.data, volume.spacing, s)
        occ = occupancy(vessel_bright(iso, record.modality, (80, 450), 700))
        ids_iso = resample_isotropic(ids, volume.spacing, s, order=0)
        seeds_iso = resample_isotropic(seeds, volume.spacing, s, order=0)
        territory = grow_territories(occ > 0.1, seeds_iso, s, fill=occ)
        raw = resample_isotropic(np.asarray(load_nifti(record.volume.arteries).data),
                                 volume.spacing, s, order=0)
        left = territory == TERRITORIES.index("LI") + 1
        right_or_posterior = np.isin(raw, [1, 2, 3, 4, 5, 8, 11])  # BA, PCAs, right ICA/MCA...
        assert left.any() and right_or_posterior.any()
        assert not (left & right_or_posterior).any()
        inside = occ > 0.1
        assert (territory[(raw == 6) & inside] == TERRITORIES.index("LI") + 1).all()  # left ICA
        assert ids_iso.max() <= len(ARTERIES)


@pytest.mark.slow
def test_projected_views_of_labelled_volumes_carry_artery_maps(external_root, tmp_path):
    records = get_adapter("topcow").load(external_root / "topcow")
    projected = project_records(records, tmp_path / "c", workers=1, progress=False).records
    posterior = {ARTERIES.index("BA") + 1, ARTERIES.index("PCA") + 1}
    for r in projected:
        for view in r.views:
            arteries = load_grayscale(artery_path(view.path))
            assert arteries.shape == load_grayscale(view.path).shape
            classes = set(np.unique(arteries)) - {0}
            assert classes, view.view
            if view.view[1] == "I":  # a carotid view shows no basilar, no PCA
                assert not classes & posterior, view.view
            else:
                assert classes & posterior, view.view


def test_topcow_adapter_reads_its_layout(external_root, tmp_path):
    records = get_adapter("topcow").load(external_root / "topcow")
    by_patient = {}
    for r in records:
        assert r.presence == 0 and all(r.location_known) and not any(r.locations)
        assert r.volume.arteries.endswith(".nii.gz") and r.volume.artery_labels
        assert r.modality in ("CTA", "MRA")
        by_patient.setdefault(r.patient_id, set()).add(r.modality)
    assert by_patient and all(m == {"CTA", "MRA"} for m in by_patient.values())
    # a case without its labels is named
    root = tmp_path / "topcow"
    (root / "imagesTr").mkdir(parents=True)
    (root / "imagesTr" / "topcow_ct_007_0000.nii.gz").write_bytes(b"")
    with pytest.raises(DataError, match="topcow_ct_007"):
        get_adapter("topcow").load(root)


def test_rsna_segmentations_are_found_and_land_on_the_vessels(external_root):
    records = get_adapter("rsna2025").load(external_root / "rsna2025")
    labelled = [r for r in records if r.volume.arteries]
    assert labelled and len(labelled) < len(records)  # a share of series, as in RSNA
    assert {("/" + r.study_id + "/") in r.volume.arteries for r in labelled} == {True, False}
    for r in labelled:
        assert r.volume.arteries.endswith("_cowseg.nii")
        volume = load_dicom_series(r.volume.path)
        ids, seeds = annotations.arteries(r, volume)
        vessel = vessel_bright(volume.data, r.modality, (80, 450), 700) > 0.2
        assert ids.any() and vessel[ids > 0].mean() > 0.5  # on the vessels, not beside them
        assert set(np.unique(seeds)) <= {0, 1, 2, 3}


def _projected_batch(projected: bool):
    g = torch.Generator().manual_seed(0)
    images = torch.full((2, 8, 32, 32), 205, dtype=torch.uint8)
    images[:, :, 10:20, 14:18] = torch.randint(30, 120, (2, 8, 10, 4), generator=g).to(torch.uint8)
    return {"images": images, "view_ids": torch.arange(8).repeat(2, 1),
            "view_mask": torch.ones(2, 8, dtype=bool),
            "projected": torch.tensor([projected, projected])}


@pytest.mark.parametrize("projected", [True, False])
def test_domain_randomisation_re_renders_projected_views_only(projected):
    config = AugmentConfig(affine_prob=0.0, contrast_prob=0.0, noise_prob=0.0, lr_swap=False,
                           projections=DomainConfig(blur_max=0.0, residue=0.0))
    batch = _projected_batch(projected)
    out = augment_batch(batch, config, torch.Generator().manual_seed(1))["images"][:, :, 0]
    plain = batch["images"].float() / 255
    background = out[..., :5, :].mean(dim=(-1, -2))  # per view, away from the vessel
    if not projected:
        assert torch.allclose(out, plain, atol=1e-5)
        return
    low, high = config.projections.background_low, config.projections.background_high
    assert ((background >= low - 1e-3) & (background <= high + 1e-3)).all()
    assert background.std() > 0.01  # each view its own background level
    vessel, plain_vessel = out[..., 10:20, 14:18], plain[..., 10:20, 14:18]
    order = torch.argsort(plain_vessel.flatten(-2), dim=-1)
    ranked = torch.gather(out[..., 10:20, 14:18].flatten(-2), -1, order)
    assert (ranked.diff(dim=-1) >= -1e-5).all()  # darker stays darker: one power law per view
    assert (vessel < background[..., None, None]).all()


@pytest.mark.slow
def test_parallel_projection_after_torch_ran_does_not_hang(external_root, tmp_path):
    """A worker forked after torch's OpenMP pool ran hangs in its first grid_sample; the
    workers run torch on one thread. A subprocess turns a hang into a failure."""
    script = f"""
import sys, torch
torch.set_num_threads(2)
x = torch.randn(1, 1, 64, 64, 64)
torch.nn.functional.grid_sample(x, torch.rand(1, 48, 48, 48, 3) * 2 - 1, align_corners=False)
from aneurysm.projection import project_records
from aneurysm.registry import get_adapter
records = get_adapter("adam").load({str(external_root / "adam")!r})
done = project_records(records, {str(tmp_path / "c")!r}, workers=2, progress=False)
print(sum(v.present for r in done.records for v in r.views))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) >= 4 * 4  # four cases, at least the carotid views each


def test_a_single_artery_3dra_is_a_carotid_injection_not_a_vertebral_one(external_root, tmp_path):
    """CADA's 3DRA volumes hold an injected carotid tree entering from below (with what reflux
    and cross-filling fill): it must appear in carotid views, never in the vertebral ones."""
    records = get_adapter("cada").load(external_root / "cada")
    projected = project_records(records, tmp_path / "c", workers=1, progress=False).records
    assert len(projected) == len(records) == 2
    for r in projected:
        present = {v.view[:2] for v in r.views if v.present}
        assert present and present <= {"LI", "RI"}, (r.study_id, present)
