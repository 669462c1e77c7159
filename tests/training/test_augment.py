"""Batched augmentation: footprints move with their views; the left-right swap respects anatomy."""

import pytest
import torch

from aneurysm.data.batches import mirror_location_scores, mirror_study, prepare_batch
from aneurysm.preprocessing import CELL_ANEURYSM, CELL_BACKGROUND, CELL_UNKNOWN
from aneurysm.schema import KIUM_VIEW_NAMES, LOCATION_NAMES, view_index
from aneurysm.training.augment import augment_batch
from aneurysm.training.config import AugmentConfig

GEOMETRY_ONLY = AugmentConfig(affine_prob=1.0, rotate_deg=30, scale=0.2, translate=0.1,
                              contrast_prob=0.0, noise_prob=0.0, lr_swap=False)


def _batch(n=4, size=64, views=KIUM_VIEW_NAMES, seed=0):
    """Studies whose first view has a dark 4 x 4 dot and a footprint cell exactly under it."""
    g = torch.Generator().manual_seed(seed)
    grid = size // 4
    images = torch.full((n, len(views), size, size), 200, dtype=torch.uint8)
    cells = torch.full((n, len(views), grid, grid), CELL_BACKGROUND, dtype=torch.uint8)
    for b in range(n):
        r, c = (int(v) for v in torch.randint(4, grid - 4, (2,), generator=g))
        images[b, 0, 4 * r:4 * r + 4, 4 * c:4 * c + 4] = 0
        cells[b, 0, r, c] = CELL_ANEURYSM
    locations = torch.zeros(n, 21)
    locations[:, LOCATION_NAMES.index("L_MCA")] = 1
    return {"images": images, "footprints": cells,
            "view_ids": torch.tensor([[view_index(v) for v in views]] * n),
            "view_mask": torch.ones(n, len(views), dtype=torch.bool),
            "presence": torch.ones(n), "presence_known": torch.ones(n, dtype=torch.bool),
            "locations": locations, "location_known": torch.ones(n, 21, dtype=torch.bool),
            "group_members": torch.zeros(n, 0, 21), "group_targets": torch.zeros(n, 0),
            "group_valid": torch.zeros(n, 0, dtype=torch.bool)}


@pytest.mark.parametrize("seed", range(5))
def test_footprints_move_with_their_views(seed):
    raw = _batch(seed=seed)
    batch = prepare_batch(raw)
    out = augment_batch(raw, GEOMETRY_ONLY, torch.Generator().manual_seed(seed))
    assert out["images"].shape == batch["images"].shape
    assert not torch.equal(out["images"], batch["images"])  # something moved
    moved = 0
    for b in range(len(out["images"])):
        target, label = out["map_target"][b, 0], out["view_label"][b, 0]
        if label < 0:
            continue  # warped out of the frame: unknown, never a false "no aneurysm"
        assert label == 1
        image = out["images"][b, 0, 0]
        dark = (image < 0.5).nonzero().float().mean(0) / 4  # dot centre, in cells
        peak = (target == target.max()).nonzero().float().mean(0)
        assert torch.dist(dark, peak) <= 1.0
        moved += int(torch.dist(peak, (batch["map_target"][b, 0] > 0).nonzero().float()[0]) > 0)
    assert moved  # the targets did move, and followed the dots


def test_augmentation_is_repeatable_from_the_generator_seed():
    batch = _batch()
    a = augment_batch(batch, AugmentConfig(), torch.Generator().manual_seed(3))
    b = augment_batch(batch, AugmentConfig(), torch.Generator().manual_seed(3))
    c = augment_batch(batch, AugmentConfig(), torch.Generator().manual_seed(4))
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["map_target"], b["map_target"])
    assert not torch.equal(a["images"], c["images"])


def test_contrast_keeps_the_range_and_order_of_grey_levels():
    batch = _batch(n=1)
    batch["images"][0, 0] = torch.randint(50, 221, (64, 64), dtype=torch.uint8)
    config = AugmentConfig(affine_prob=0.0, contrast_prob=1.0, contrast_gamma_low=0.5,
                           contrast_gamma_high=0.6, noise_prob=0.0, lr_swap=False)
    out = augment_batch(batch, config, torch.Generator().manual_seed(0))
    a = out["images"][0, 0].flatten()
    b = prepare_batch(batch)["images"][0, 0].flatten()
    assert torch.isclose(a.min(), b.min()) and torch.isclose(a.max(), b.max())
    mid = (b > b.min()) & (b < b.max())
    assert (a[mid] > b[mid]).all()  # gamma < 1 lifts the grey levels between the extremes
    order = torch.argsort(b)
    assert (a[order].diff() >= -1e-5).all()  # and keeps their order


def test_prepare_batch_reads_footprint_cells():
    raw = _batch(n=1)
    raw["footprints"][0, 1] = CELL_UNKNOWN  # a view nobody annotated
    raw["footprints"][0, 2, 0, 0] = CELL_UNKNOWN  # a negative view with one uncertain cell
    batch = prepare_batch(raw)
    assert batch["images"].shape == (1, 8, 1, 64, 64) and batch["images"].max() <= 1.0
    assert batch["view_label"][0, :4].tolist() == [1.0, -1.0, -1.0, 0.0]
    assert batch["map_weight"][0, 1].sum() == 0 and batch["map_weight"][0, 2].sum() == 16 * 16 - 1


def test_left_right_swap_moves_views_footprints_and_labels_together():
    batch = prepare_batch(_batch(n=1, views=KIUM_VIEW_NAMES))
    li_a, ri_a = KIUM_VIEW_NAMES.index("LI-A"), KIUM_VIEW_NAMES.index("RI-A")
    li_b, ri_b = KIUM_VIEW_NAMES.index("LI-B"), KIUM_VIEW_NAMES.index("RI-B")
    batch["images"][0, li_b] = torch.rand(1, 64, 64)
    m = mirror_study(batch)
    images, target = batch["images"][0], batch["map_target"][0]
    assert torch.equal(m["images"][0, ri_a], torch.flip(images[li_a], dims=[-1]))  # frontal
    assert torch.equal(m["map_target"][0, ri_a], torch.flip(target[li_a], dims=[-1]))
    assert torch.equal(m["images"][0, ri_b], images[li_b])  # lateral: swapped, not flipped
    assert m["view_label"][0, ri_a] == 1 and m["view_label"][0, li_a] == 0
    assert m["locations"][0, LOCATION_NAMES.index("R_MCA")] == 1
    assert m["locations"][0].sum() == 1
    back = mirror_study(m)
    for key in ("images", "map_target", "view_label", "locations"):
        assert torch.equal(back[key], batch[key]), key
    assert torch.equal(mirror_location_scores(m["locations"]), batch["locations"])


def test_swap_of_one_unbatched_study_matches_the_batched_swap():
    batch = prepare_batch(_batch(n=2, views=KIUM_VIEW_NAMES))
    one = {k: v[1] for k, v in batch.items()}
    assert torch.equal(mirror_study(one)["images"], mirror_study(batch)["images"][1])


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_the_sync_free_path_gives_the_same_batch_when_every_draw_is_certain(p):
    """The GPU path draws swap and noise for every study and keeps the drawn ones; with the
    probabilities at 0 or 1 there is nothing left to chance, so it must equal the CPU path."""
    batch = _batch(n=4)
    batch["images"][:, 1:] = torch.randint(0, 256, batch["images"][:, 1:].shape,
                                           generator=torch.Generator().manual_seed(1),
                                           dtype=torch.uint8)
    batch["projected"] = torch.tensor([True, False, True, False])
    config = AugmentConfig(lr_swap_prob=p, noise_prob=p, noise_std=0.05)
    picked = augment_batch(batch, config, torch.Generator().manual_seed(5), sync_free=False)
    masked = augment_batch(batch, config, torch.Generator().manual_seed(5), sync_free=True,
                           projected=batch["projected"])
    assert picked.keys() == masked.keys()
    for key in picked:
        assert torch.allclose(picked[key].float(), masked[key].float(), atol=1e-6), key
    plain = augment_batch(batch, AugmentConfig(lr_swap_prob=p, noise_prob=0.0),
                          torch.Generator().manual_seed(5), sync_free=True)
    noisy = not torch.allclose(plain["images"], masked["images"])
    assert noisy == (p == 1.0)
    swapped = not torch.equal(masked["view_ids"], batch["view_ids"]) or not torch.equal(
        masked["locations"], batch["locations"])
    assert swapped == (p == 1.0)
