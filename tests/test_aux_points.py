"""The optional auxiliary localisation target: points that move with their views."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aneurysm.cli.main import cli
from aneurysm.model import ModelConfig, build_model
from aneurysm.preprocessing import ImageCache, PreprocessConfig
from aneurysm.projection import project_records
from aneurysm.registry import get_adapter
from aneurysm.schema import PROJECTION_VIEW_NAMES, view_index
from aneurysm.training.arrays import StudyArrays, build_arrays
from aneurysm.training.augment import AugmentConfig, mirror_study
from aneurysm.training.dataset import StudyDataset


def _one_study(u=0.3, v=0.6, size=48):
    img = np.full((1, 8, size, size), 200, np.uint8)
    x, y = int(u * size), int(v * size)
    img[0, 0, y - 1:y + 2, x - 1:x + 2] = 0  # a dark dot where the point says
    ids = np.array([[view_index(n) for n in PROJECTION_VIEW_NAMES]])
    points = np.zeros((1, 8, 3), np.float32)
    points[0, 0] = (1.0, (x + 0.5) / size, (y + 0.5) / size)
    known = np.zeros((1, 8), bool)
    known[0, 0] = True
    return StudyArrays(["s"], ["p"], img, ids, np.ones((1, 8), bool), np.ones(1, np.float32),
                       np.ones(1, bool), np.zeros((1, 21), np.float32), np.zeros((1, 21), bool),
                       np.zeros((1, 0, 21), np.float32), np.zeros((1, 0), np.float32),
                       np.zeros((1, 0), bool), points, known)


@pytest.mark.parametrize("seed", range(6))
def test_point_moves_with_the_augmented_view(seed):
    aug = AugmentConfig(rotate_deg=30, scale=0.2, translate=0.1, contrast_gamma_low=1.0,
                        contrast_gamma_high=1.0, noise_std=0.0, lr_swap=False)
    ds = StudyDataset(_one_study(), aug)
    ds.transform.set_random_state(seed=seed)
    sample = ds[0]
    has, u, v = sample["view_points"][0].tolist()
    image = sample["images"][0, 0]
    if has == 0:
        return  # moved out of the frame: a valid outcome, reported as "not visible"
    row, col = divmod(int(torch.argmin(image)), image.shape[-1])
    assert abs(u * 48 - 0.5 - col) <= 2.0 and abs(v * 48 - 0.5 - row) <= 2.0


def test_mirroring_flips_frontal_points_and_swaps_hemispheres():
    ds = StudyDataset(_one_study(u=0.25))  # on MIP-ALL-A
    sample = ds[0]
    sample["view_points"][2] = torch.tensor([1.0, 0.2, 0.5])  # MIP-L-A
    sample["view_points_known"][2] = True
    m = mirror_study(sample)
    r_a = PROJECTION_VIEW_NAMES.index("MIP-R-A")
    assert m["view_points"][0, 1] == pytest.approx(1 - sample["view_points"][0, 1])
    assert m["view_points"][r_a].tolist() == pytest.approx([1.0, 0.8, 0.5])
    assert not m["view_points_known"][2]


def test_arrays_carry_points_only_where_positions_are_known(external_root, kium_root, tmp_path):
    cada = get_adapter("cada").load(external_root / "cada")
    kium = get_adapter("kium").load(kium_root)[:2]
    projected = project_records(cada, tmp_path / "c", workers=1, progress=False).records
    cache = ImageCache(tmp_path / "c", PreprocessConfig(image_size=64))
    arrays, _, _ = build_arrays(projected + kium, cache, progress=False)
    assert arrays.view_points_known[: len(cada)].all()
    assert not arrays.view_points_known[len(cada):].any()  # K-ium: no positions
    for i in range(len(cada)):
        visible = np.nonzero(arrays.view_points[i, :, 0])[0]
        assert len(visible)
        for j in visible:
            u, v = arrays.view_points[i, j, 1:]
            x, y = int(u * 64), int(v * 64)
            patch = arrays.images[i, j, max(y - 2, 0):y + 3, max(x - 2, 0):x + 3]
            assert patch.min() < np.median(arrays.images[i, j]) - 40  # on the dark aneurysm


def test_pretrain_aux_weight_trains_the_point_head(external_root, tmp_path, cfg):
    def head_after(aux: str, out: str) -> torch.Tensor:
        result = CliRunner().invoke(cli, ["pretrain", "--data-root", str(external_root),
                                          "--config", str(cfg), "--out", str(tmp_path / out),
                                          "--epochs", "1", "--aux-weight", aux])
        assert result.exit_code == 0, result.output
        state = torch.load(tmp_path / out / "pretrained.pt", weights_only=False)["state_dict"]
        return state["heads.points.weight"]

    torch.manual_seed(7)
    fresh = build_model(ModelConfig(embed_dim=32)).state_dict()["heads.points.weight"]
    assert torch.equal(head_after("0", "off"), fresh)  # off: the head never moves
    assert not torch.equal(head_after("1.0", "on"), fresh)
