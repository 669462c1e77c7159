"""Aneurysm footprints: 3-D masks and points projected along each view's rays, carried onto the
map grid of the preprocessed view, and into the arrays the model trains on."""

from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from aneurysm.data.arrays import build_arrays
from aneurysm.io.images import load_grayscale
from aneurysm.preprocessing import (
    CELL_ANEURYSM,
    CELL_BACKGROUND,
    CELL_UNKNOWN,
    ImageCache,
    PreprocessConfig,
    footprint_cells,
)
from aneurysm.projection import ProjectionConfig, project_records
from aneurysm.projection.render import pose_rotation
from aneurysm.projection.stage import (
    POSE_MARK,
    footprint_path,
    is_canonical,
    pose_angles,
    read_positions,
)
from aneurysm.registry import get_adapter

SHAPE = (80, 90, 90)  # x (left-right), y (posterior-anterior), z (inferior-superior), 1 mm
CONFIG = ProjectionConfig(pixels=128, spacing_mm=1.0, fov_mm=120.0)


def _toy_head(lesion_centre, radius=3):
    """Vessels entering from below: left and right carotids in front, a basilar behind, each
    rising to z = 70; a ball (the aneurysm) touching the left carotid."""
    x, y, z = np.indices(SHAPE)
    vessels = np.zeros(SHAPE, bool)
    for vx, vy in ((28, 60), (52, 60), (40, 35)):  # left ICA, right ICA, basilar (RAS+)
        vessels |= ((x - vx) ** 2 + (y - vy) ** 2 <= 4) & (z < 70)
    cx, cy, cz = lesion_centre
    ball = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= radius**2
    return vessels, ball


def _write_lausanne(root, vessels, ball, affine=None, mask_flipped=False):
    """One patient in the Lausanne BIDS layout: a TOF-like image and the ball's mask, both on
    ``affine``; ``mask_flipped`` stores the mask in the opposite left-right voxel order, with
    the affine that says so (the same voxels in the world)."""
    image = np.where(vessels | ball, 500.0, 0.0) + np.random.default_rng(0).random(SHAPE) * 5
    anat = root / "sub-001" / "ses-1" / "anat"
    masks = root / "derivatives" / "manual_masks" / "sub-001" / "ses-1" / "anat"
    anat.mkdir(parents=True)
    masks.mkdir(parents=True)
    affine = np.eye(4) if affine is None else affine
    mask, mask_affine = ball.astype(np.uint8), affine
    if mask_flipped:
        flip = np.diag([-1.0, 1.0, 1.0, 1.0])
        flip[0, 3] = SHAPE[0] - 1
        mask, mask_affine = mask[::-1].copy(), affine @ flip
    nib.save(nib.Nifti1Image(image.astype(np.float32), affine),
             str(anat / "sub-001_ses-1_angio.nii.gz"))
    nib.save(nib.Nifti1Image(mask, mask_affine),
             str(masks / "sub-001_ses-1_desc-Lesion_1_mask.nii.gz"))
    pd.DataFrame({"participant_id": ["sub-001"], "group": ["patient"]}).to_csv(
        root / "participants.tsv", sep="\t", index=False)


def _cone_beam(point, centre, view):
    """Where a voxel lands on the detector (column, row), from the C-arm's geometry alone."""
    carm, s = CONFIG.carm(), CONFIG.spacing_mm
    pitch = carm.fov_mm * carm.sid_mm / carm.sod_mm / carm.pixels
    dx, dy, dz = (np.asarray(centre) - np.asarray(point)) * s
    if view == "A":  # beam posterior -> anterior; the patient's right on the image's left
        depth, across = -dy, dx
    else:  # beam from the patient's right to left; the face on the image's left
        depth, across = dx, dy
    m = carm.sid_mm / (carm.sod_mm + depth)
    half = carm.pixels / 2 - 0.5
    return across * m / pitch + half, dz * m / pitch + half


def test_footprint_lands_where_the_mask_projects_under_the_cone_beam(tmp_path):
    centre = (31, 60, 50)  # on the left carotid's wall
    vessels, ball = _toy_head(centre)
    _write_lausanne(tmp_path / "lausanne", vessels, ball)
    record = get_adapter("lausanne").load(tmp_path / "lausanne")[0]
    projected = project_records([record], tmp_path / "cache", CONFIG, workers=1,
                                progress=False).records[0]
    isocentre = np.argwhere(vessels | ball).mean(axis=0)
    seen = []
    for view in projected.views:
        fp = load_grayscale(footprint_path(view.path))
        assert fp.shape == (128, 128) == load_grayscale(view.path).shape
        rows, cols = np.nonzero(fp == 255)
        if not len(rows):
            continue
        seen.append(view.view)
        col, row = _cone_beam(centre, isocentre, view.view[-1])
        assert abs(cols.mean() - col) <= 1.0 and abs(rows.mean() - row) <= 1.0, view.view
        # a disc of radius 3 mm, on pixels of 0.94 mm at the isocentre: about 30-45 pixels
        assert 20 <= len(rows) <= 55
        image = load_grayscale(view.path)
        assert image[rows, cols].mean() < np.median(image) - 60  # on the dark aneurysm
    # the left carotid's injection fills it; the right carotid's and the vertebral's do not
    assert seen == ["LI-A", "LI-B"]


def _footprints(root, cache):
    record = get_adapter("lausanne").load(root)[0]
    projected = project_records([record], cache, CONFIG, workers=1, progress=False).records[0]
    return {v.view: load_grayscale(footprint_path(v.path)) for v in projected.views if v.path}


def test_an_oblique_volume_and_a_mask_in_another_voxel_order_project_alike(tmp_path):
    vessels, ball = _toy_head((31, 60, 50))
    turn = np.radians(12.0)  # an oblique acquisition: the voxel grid turned about z
    oblique = np.eye(4)
    oblique[:2, :2] = [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
    want = None
    for name, kw in (("aligned", {}), ("oblique", {"affine": oblique}),
                     ("flipped mask", {"mask_flipped": True}),
                     ("oblique, flipped mask", {"affine": oblique, "mask_flipped": True})):
        _write_lausanne(tmp_path / name, vessels, ball, **kw)
        got = _footprints(tmp_path / name, tmp_path / f"cache-{name}")
        assert any((fp == 255).any() for fp in got.values())
        if want is None:
            want = got
        assert got.keys() == want.keys()
        for view in want:  # the footprint is where the aligned one is, pixel for pixel
            assert np.array_equal(got[view] == 255, want[view] == 255), (name, view)


def test_a_turned_pose_moves_the_footprint_and_positions_with_the_aneurysm(tmp_path):
    """Extra C-arm poses turn the head: its image, its footprint and the aneurysm's projected
    centre all move where the rotated aneurysm projects; the canonical pose stays cached."""
    centre = (31, 60, 50)
    vessels, ball = _toy_head(centre)
    _write_lausanne(tmp_path / "lausanne", vessels, ball)
    record = get_adapter("lausanne").load(tmp_path / "lausanne")[0]
    canonical = project_records([record], tmp_path / "cache", CONFIG, workers=1,
                                progress=False).records
    config = replace(CONFIG, poses=3, pose_jitter_deg=20.0)
    posed = project_records([record], tmp_path / "cache", config, workers=1,
                            progress=False).records
    assert [r.study_id for r in posed] == [record.study_id] + [
        f"{record.study_id}{POSE_MARK}{k}" for k in (1, 2)]
    assert {r.patient_id for r in posed} == {record.patient_id}
    assert [is_canonical(r) for r in posed] == [True, False, False]
    assert posed[0].views == canonical[0].views  # the same cached files: nothing re-rendered
    isocentre = np.argwhere(vessels | ball).mean(axis=0)
    for k, r in enumerate(posed[1:], start=1):
        folder = Path(r.view_path("LI-A")).parent
        turn, tilt = pose_angles(Path(canonical[0].view_path("LI-A")).parent.name, k, 20.0)
        assert folder.name.endswith(f".turn{turn:+.1f}.tilt{tilt:+.1f}") and abs(turn) > 0
        rotation = pose_rotation(turn, tilt)
        moved = rotation @ (np.asarray(centre) - isocentre) + isocentre
        positions = {p["view"]: p for p in read_positions(r)}
        for name in ("LI-A", "LI-B"):
            fp = load_grayscale(footprint_path(r.view_path(name)))
            rows, cols = np.nonzero(fp == 255)
            col, row = _cone_beam(moved, isocentre, name[-1])
            assert abs(cols.mean() - col) <= 1.5 and abs(rows.mean() - row) <= 1.5, (k, name)
            assert abs(positions[name]["x"] - col) <= 1.5, (k, name)
            assert abs(positions[name]["y"] - row) <= 1.5, (k, name)
            before = load_grayscale(canonical[0].view_path(name)).astype(int)
            assert np.abs(load_grayscale(r.view_path(name)).astype(int) - before).mean() > 1


def test_footprint_cells_follow_the_crop_and_square_padding():
    config = PreprocessConfig(image_size=32, border_dark_level=40)
    image = np.full((60, 80), 200, np.uint8)
    image[:, :8] = 5  # a dark border band on the left: cropped away
    footprint = np.zeros_like(image)
    footprint[30, 50] = 255  # aneurysm pixel
    footprint[5, 70] = 128  # an unknown pixel
    cells = footprint_cells(footprint, image, config, grid=8)
    # after the crop the image is 60 x 72, padded to 72 x 72 (6 rows on top): 9 px per cell
    assert cells[(30 + 6) // 9, (50 - 8) // 9] == CELL_ANEURYSM
    assert cells[(5 + 6) // 9, (70 - 8) // 9] == CELL_UNKNOWN
    around = cells[3:6, 3:6].copy()
    around[1, 1] = CELL_UNKNOWN
    assert (around == CELL_UNKNOWN).all()  # the ring around an aneurysm cell is not punished
    assert (cells == CELL_BACKGROUND).sum() == 64 - 9 - 1


def test_point_annotations_become_a_sure_core_and_an_unknown_rim(external_root, tmp_path):
    rsna = [r for r in get_adapter("rsna2025").load(external_root / "rsna2025")
            if r.presence == 1 and r.volume.localizers]
    assert rsna, "the fixture has positive RSNA series with localizers"
    projected = project_records(rsna, tmp_path / "c", workers=1, progress=False).records
    checked = 0
    for r in projected:
        for view in {p["view"] for p in read_positions(r)}:
            fp = load_grayscale(footprint_path(r.view_path(view)))
            core, rim = fp == 255, fp == 128
            assert core.any() and rim.sum() > core.sum()
            checked += 1
    assert checked


def test_arrays_know_the_footprint_only_where_a_source_says_where(external_root, kium_root,
                                                                  tmp_path):
    cada = get_adapter("cada").load(external_root / "cada")
    lausanne = get_adapter("lausanne").load(external_root / "lausanne")
    negatives = [r for r in lausanne if r.presence == 0]
    kium = get_adapter("kium").load(kium_root)[:2]
    projected = project_records(cada + negatives, tmp_path / "c", workers=1,
                                progress=False).records
    cache = ImageCache(tmp_path / "c", PreprocessConfig(image_size=64))
    arrays, _, _ = build_arrays(projected + kium, cache, progress=False)
    assert arrays.footprints.shape[-2:] == (16, 16)
    n_cada = len(cada)
    for i in range(n_cada):  # every CADA case is positive with a mask
        assert (arrays.footprints[i] == CELL_ANEURYSM).any()
        views = np.nonzero((arrays.footprints[i] == CELL_ANEURYSM).any(axis=(1, 2)))[0]
        for j in views:  # the aneurysm cells sit on dark pixels of the preprocessed view
            rows, cols = np.nonzero(arrays.footprints[i, j] == CELL_ANEURYSM)
            patch = np.concatenate([arrays.images[i, j, 4 * r:4 * r + 4, 4 * c:4 * c + 4].ravel()
                                    for r, c in zip(rows, cols)])
            assert patch.min() < np.median(arrays.images[i, j]) - 40
    for i in range(n_cada, n_cada + len(negatives)):  # known negatives: background everywhere
        assert (arrays.footprints[i] == CELL_BACKGROUND).all()
    assert (arrays.footprints[-len(kium):] == CELL_UNKNOWN).all()  # K-ium says nothing of where
    # a map at stride 2 trains on footprints at stride 2; pooled back, they are the stride-4 ones
    fine, _, _ = build_arrays(projected[:n_cada], cache, progress=False, footprint_stride=2)
    assert fine.footprints.shape[-2:] == (32, 32)
    lesion = torch.from_numpy(fine.footprints == CELL_ANEURYSM).float()
    coarse = torch.from_numpy(arrays.footprints[:n_cada] == CELL_ANEURYSM)
    assert torch.equal(F.max_pool2d(lesion.flatten(0, 1), 2).bool().reshape(coarse.shape), coarse)


def test_footprint_png_is_written_beside_each_view(external_root, tmp_path):
    cada = get_adapter("cada").load(external_root / "cada")[:1]
    record = project_records(cada, tmp_path / "c", workers=1, progress=False).records[0]
    for view in (v for v in record.views if v.present):
        with Image.open(footprint_path(view.path)) as img:
            assert img.mode == "L"
            assert set(np.unique(np.asarray(img))) <= {0, 128, 255}
