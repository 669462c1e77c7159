"""The second look: crops land where they should at every resolution, follow the augmentation
and the left-right swap, add to the view's evidence, and survive pretrain -> finetune."""

import numpy as np
import pytest
import torch
from PIL import Image

from aneurysm.data.arrays import image_caches
from aneurysm.model import ModelConfig, build_model
from aneurysm.model.checkpoint import load_init, save_checkpoint
from aneurysm.model.dense import smooth_max
from aneurysm.model.second_look import crop_evidence, peak_centres, sample_crops
from aneurysm.preprocessing import PreprocessConfig
from aneurysm.schema import KIUM_VIEW_NAMES, view_index
from aneurysm.training.augment import augment_batch
from aneurysm.training.config import AugmentConfig

FIELD = 0.125


def _angiogram(path, size=1024, dot=(0.30, 0.65), radius=0.012):
    """A DSA-like frame (light field, a vessel) with a dark round sac at ``dot`` (x, y)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.full((size, size), 205.0)
    image[np.abs(xx - 0.5) < 0.004] = 90  # a vessel down the middle
    image[(xx - dot[0]) ** 2 + (yy - dot[1]) ** 2 < radius ** 2] = 20
    Image.fromarray(image.astype(np.uint8)).save(path, quality=95)
    return path


def prepare_fine(fine):
    return fine.float() / 255


@pytest.mark.parametrize("fine_size", [128, 256, 512])
def test_a_crop_at_the_footprint_shows_it_in_place_at_every_source_resolution(tmp_path, fine_size):
    dot = (0.30, 0.65)
    path = _angiogram(tmp_path / "view.jpg", dot=dot)
    config = PreprocessConfig(image_size=128, fine_size=fine_size)
    coarse, fine = image_caches(str(tmp_path / "cache"), config)
    if fine_size == 128:
        fine = coarse
    view = torch.from_numpy(fine.load(path)).float()[None] / 255
    assert view.shape[-1] == fine_size
    # the map's peak is the footprint's cell (32 x 32 cells at 128 px)
    maps = torch.full((1, 32, 32), -5.0)
    maps[0, int(dot[1] * 32), int(dot[0] * 32)] = 5.0
    centre = peak_centres(maps, 1, 2)
    size = max(int(FIELD * fine_size), 16)
    crop = sample_crops(view, centre, None, size, FIELD)[0, 0]
    # where the sac must sit in the crop: its offset from the crop's centre, in crop pixels
    expected = ((torch.tensor(dot) - centre[0, 0]) / FIELD + 0.5) * size
    dark = (crop < 0.3).nonzero().float().mean(0).flip(0) + 0.5  # (x, y)
    assert torch.dist(dark, expected) <= 1.0 + size / (FIELD * fine_size)  # a source pixel
    assert crop.min() < 0.3 and crop.max() > 0.7  # the sac and its surroundings


def _batch(size=64, fine=256, seed=0):
    """Studies whose every view has one dark dot at a random place, at both resolutions."""
    g = torch.Generator().manual_seed(seed)
    n, views = 3, KIUM_VIEW_NAMES
    coarse = torch.full((n, len(views), size, size), 200, dtype=torch.uint8)
    high = torch.full((n, len(views), fine, fine), 200, dtype=torch.uint8)
    k = fine // size
    for b in range(n):
        for v in range(len(views)):
            r, c = (int(t) for t in torch.randint(12, size - 12, (2,), generator=g))
            coarse[b, v, r - 2:r + 2, c - 2:c + 2] = 0
            high[b, v, k * (r - 2):k * (r + 2), k * (c - 2):k * (c + 2)] = 0
    return {"images": coarse, "fine": high,
            "view_ids": torch.tensor([[view_index(v) for v in views]] * n),
            "view_mask": torch.ones(n, len(views), dtype=torch.bool),
            "presence": torch.ones(n), "presence_known": torch.ones(n, dtype=torch.bool),
            "locations": torch.zeros(n, 21), "location_known": torch.ones(n, 21, dtype=torch.bool),
            "group_members": torch.zeros(n, 0, 21), "group_targets": torch.zeros(n, 0),
            "group_valid": torch.zeros(n, 0, dtype=torch.bool)}


@pytest.mark.parametrize("seed", range(3))
def test_crops_map_back_to_the_full_view_under_augmentation_and_the_swap(seed):
    config = AugmentConfig(affine_prob=1.0, rotate_deg=30, scale=0.2, translate=0.1,
                           contrast_prob=0.0, noise_prob=0.0, lr_swap=True, lr_swap_prob=1.0)
    raw = _batch(seed=seed)
    out = augment_batch(dict(raw), config, torch.Generator().manual_seed(seed))
    assert out["fine"].shape == raw["fine"].shape and out["fine_theta"].shape == (3, 8, 2, 3)
    images = out["images"][:, :, 0]
    checked = 0
    for b in range(3):
        for v in range(8):
            dark = (images[b, v] < 0.3).nonzero().float()
            if len(dark) < 4:
                continue  # warped out of the frame
            centre = (dark.mean(0).flip(0) + 0.5) / images.shape[-1]  # (x, y) in [0, 1]
            crop = sample_crops(out["fine"][b, v][None], centre[None, None],
                                out["fine_theta"][b, v][None], 32, 0.25)[0, 0]
            # the dot (4 coarse px = 16 fine px, a quarter of the crop) sits at its centre
            middle = crop[14:18, 14:18]
            assert middle.mean() < 0.2, (b, v)
            assert crop.max() > 0.7
            checked += 1
    assert checked >= 12
    # the swap really happened: the frontal views came back mirrored and moved
    assert not torch.equal(out["fine"], prepare_fine(raw["fine"]))


def test_view_evidence_rises_with_any_single_crop():
    g = torch.Generator().manual_seed(0)
    logits = (torch.rand(6, 4, generator=g) * 2 - 1).requires_grad_()  # within float resolution
    crop_evidence(logits, 5.0).sum().backward()
    assert (logits.grad > 0).all()
    for k in range(4):
        raised = logits.detach().clone()
        raised[:, k] += 1.0
        assert (crop_evidence(raised, 5.0) > crop_evidence(logits.detach(), 5.0)).all()


def _model(**extra):
    torch.manual_seed(0)
    return build_model(ModelConfig.create("dense", width=8, embed_dim=16, crops=3,
                                          crop_size=16, **extra))


def test_a_view_adds_its_crops_evidence_to_the_first_stage():
    model = _model().eval()
    with torch.no_grad():  # let the patch network speak: its last layer starts at zero
        torch.nn.init.normal_(model.second_look.score[-1].weight, std=1.0)
        images = torch.rand(2, 8, 1, 64, 64)
        ids = torch.arange(8).repeat(2, 1)
        mask = torch.ones(2, 8, dtype=torch.bool)
        out = model(images, ids, mask, fine=torch.rand(2, 8, 128, 128))
        first = smooth_max(out["maps"], 5.0) + model.heads["view_bias"](ids)[..., 0]
        expected = first + crop_evidence(out["crop_logits"][..., :3], 5.0)
    assert out["crop_logits"].shape == (2, 8, 3) and out["crop_centres"].shape == (2, 8, 3, 2)
    assert torch.allclose(out["view_logits"], expected, atol=1e-5)
    assert not torch.allclose(out["view_logits"], first, atol=1e-3)


def test_pretrain_to_finetune_keeps_every_weight_of_both_stages(tmp_path):
    pretrained = _model()
    with torch.no_grad():
        for p in pretrained.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not the initial values of a fresh model
    config = ModelConfig.create("dense", width=8, embed_dim=16, crops=3, crop_size=16)
    save_checkpoint(tmp_path / "pretrained.pt", pretrained,
                    {"model": config.architecture(), "image_size": 64})
    fresh = build_model(config)
    skipped = load_init(fresh, tmp_path / "pretrained.pt",
                        {"model": config.architecture(), "image_size": 64})
    assert skipped == []
    theirs, ours = pretrained.state_dict(), fresh.state_dict()
    assert any(k.startswith("second_look.") for k in ours)
    assert set(theirs) == set(ours)
    assert all(torch.equal(theirs[k], ours[k]) for k in ours)
