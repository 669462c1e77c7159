"""Aneurysm footprints: 3-D masks and points projected along each view's rays, carried onto the
map grid of the preprocessed view, and into the arrays the model trains on."""

import nibabel as nib
import numpy as np
import pandas as pd
from PIL import Image

from aneurysm.io.images import load_grayscale
from aneurysm.preprocessing import (
    CELL_ANEURYSM,
    CELL_BACKGROUND,
    CELL_UNKNOWN,
    ImageCache,
    PreprocessConfig,
    footprint_cells,
)
from aneurysm.projection import project_records
from aneurysm.projection.stage import footprint_path
from aneurysm.registry import get_adapter
from aneurysm.training.arrays import build_arrays

SHAPE = (60, 64, 56)  # x (left-right), y (posterior-anterior), z (inferior-superior), 1 mm


def _write_lausanne(root, lesion_centre, radius=3):
    """One patient in the Lausanne BIDS layout: a vessel along z at (x, y) = (44, 20), a bright
    ball (the aneurysm) at ``lesion_centre``, and the ball's mask."""
    x, y, z = np.indices(SHAPE)
    cx, cy, cz = lesion_centre
    ball = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= radius**2
    vessel = (x - 44) ** 2 + (y - 20) ** 2 <= 4
    image = np.where(ball | vessel, 500.0, 0.0) + np.random.default_rng(0).random(SHAPE) * 5
    anat = root / "sub-001" / "ses-1" / "anat"
    masks = root / "derivatives" / "manual_masks" / "sub-001" / "ses-1" / "anat"
    anat.mkdir(parents=True)
    masks.mkdir(parents=True)
    affine = np.eye(4)
    nib.save(nib.Nifti1Image(image.astype(np.float32), affine),
             str(anat / "sub-001_ses-1_angio.nii.gz"))
    nib.save(nib.Nifti1Image(ball.astype(np.uint8), affine),
             str(masks / "sub-001_ses-1_desc-Lesion_1_mask.nii.gz"))
    pd.DataFrame({"participant_id": ["sub-001"], "group": ["patient"]}).to_csv(
        root / "participants.tsv", sep="\t", index=False)


def test_footprint_of_a_known_mask_lands_where_the_aneurysm_projects(tmp_path):
    centre = (16, 40, 30)
    _write_lausanne(tmp_path / "lausanne", centre)
    record = get_adapter("lausanne").load(tmp_path / "lausanne")[0]
    projected = project_records([record], tmp_path / "cache", workers=1, progress=False).records[0]
    nx, ny, nz = SHAPE
    # frontal views look along y: column = nx - 1 - x; lateral along x: column = ny - 1 - y;
    # superior is up in both: row = nz - 1 - z
    expect = {"A": (nx - 1 - centre[0], nz - 1 - centre[2]),
              "B": (ny - 1 - centre[1], nz - 1 - centre[2])}
    seen = []
    for view in projected.views:
        fp = load_grayscale(footprint_path(view.path))
        assert fp.shape == load_grayscale(view.path).shape
        rows, cols = np.nonzero(fp == 255)
        if not len(rows):
            continue
        seen.append(view.view)
        col, row = expect[view.view[-1]]
        assert abs(cols.mean() - col) <= 0.5 and abs(rows.mean() - row) <= 0.5, view.view
        assert 20 <= len(rows) <= 40  # a disc of radius 3: about 29 pixels
        image = load_grayscale(view.path)
        assert image[rows, cols].mean() < np.median(image) - 60  # on the dark aneurysm
    assert {"MIP-ALL-A", "MIP-ALL-B"} <= set(seen)
    # the vessels' centroid lies near (x, y) = (40, 22): the ball at (16, 40) is on the patient's
    # left (RAS+) and anterior, so no right-hemisphere or posterior view shows it
    assert "MIP-L-A" in seen and "MIP-L-B" in seen
    assert not {"MIP-R-A", "MIP-R-B", "MIP-POST-A", "MIP-POST-B"} & set(seen)


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
    for r in projected:
        fp = load_grayscale(footprint_path(r.view_path("MIP-ALL-A")))
        core, rim = fp == 255, fp == 128
        assert core.any() and rim.sum() > core.sum()


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


def test_footprint_png_is_written_beside_each_view(external_root, tmp_path):
    cada = get_adapter("cada").load(external_root / "cada")[:1]
    record = project_records(cada, tmp_path / "c", workers=1, progress=False).records[0]
    for view in record.views:
        with Image.open(footprint_path(view.path)) as img:
            assert img.mode == "L"
            assert set(np.unique(np.asarray(img))) <= {0, 128, 255}
