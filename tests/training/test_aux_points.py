"""The global head's optional auxiliary localisation target, read from the footprints."""

import pytest
import torch
from click.testing import CliRunner
from conftest import write_config

from aneurysm.cli.main import cli
from aneurysm.model import ModelConfig, build_model
from aneurysm.model.checkpoint import read_checkpoint
from aneurysm.training.losses import footprint_points


def test_point_target_is_the_centroid_of_the_aneurysm_cells():
    target = torch.zeros(2, 8, 8)
    target[0, 2, 5] = target[0, 3, 5] = 1.0
    label = torch.tensor([1.0, 0.0])
    points = footprint_points(target, label)
    assert points[0].tolist() == [1.0, (5 + 0.5) / 8, (2.5 + 0.5) / 8]
    assert points[1, 0] == 0.0


@pytest.mark.slow
def test_pretrain_aux_weight_trains_the_point_head(external_root, tmp_path):
    cfg = write_config(tmp_path, model={"name": "global"})

    def head_after(aux: str, out: str) -> torch.Tensor:
        result = CliRunner().invoke(cli, ["pretrain", "--data-root", str(external_root),
                                          "--config", str(cfg), "--out", str(tmp_path / out),
                                          "--epochs", "1", "--aux-weight", aux])
        assert result.exit_code == 0, result.output
        state = read_checkpoint(tmp_path / out / "pretrained.safetensors")["state_dict"]
        return state["heads.points.weight"]

    torch.manual_seed(7)
    fresh = build_model(ModelConfig.create("global", embed_dim=32)).state_dict()
    assert torch.equal(head_after("0", "off"), fresh["heads.points.weight"])  # off: never moves
    assert not torch.equal(head_after("1.0", "on"), fresh["heads.points.weight"])
