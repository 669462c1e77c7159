"""The weight average (train.ema_decay): what it averages, what checkpoints keep, resuming."""

import json
import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from aneurysm.cli.main import cli
from aneurysm.model.checkpoint import read_checkpoint, save_checkpoint
from aneurysm.training.config import TrainConfig
from aneurysm.training.ema import WeightAverage
from conftest import write_config


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def _step(model: nn.Module, average: WeightAverage, shift: float) -> None:
    """A stand-in optimiser step: every parameter moves by ``shift``; BatchNorm sees a batch."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(shift)
        model.train()
        model(torch.randn(8, 3))
    average.update()


def test_the_average_follows_each_step_at_its_decay():
    model = _net(0)
    start = model[0].weight.detach().clone()
    average = WeightAverage(model, 0.9)
    for _ in range(3):  # the weights are start + 1, + 2, + 3 after each step
        _step(model, average, 1.0)
    # first step copied (start + 1); then 0.9 a + 0.1 w: start + 1.1, then start + 1.29
    assert torch.allclose(average.module[0].weight, start + 1.29, atol=1e-5)
    assert torch.allclose(model[0].weight, start + 3.0)
    running = average.module[1].running_mean  # BatchNorm's statistics are averaged too
    assert not torch.equal(running, model[1].running_mean)


def test_off_is_the_model_itself():
    model = _net(0)
    average = WeightAverage(model, 0.0)
    _step(model, average, 1.0)
    assert average.module is model and average.state() == {}


def test_a_checkpoint_resumes_the_average_and_the_trained_weights(tmp_path):
    model = _net(0)
    average = WeightAverage(model, 0.8)
    for shift in (0.5, -0.2, 0.3):
        _step(model, average, shift)
    path = save_checkpoint(tmp_path / "last.pt", average.module, {"epoch": 3}, **average.state())
    state = read_checkpoint(path)
    assert state["ema_steps"] == 3

    other = _net(1)  # different weights, so nothing matches by chance
    resumed = WeightAverage(other, 0.8)
    resumed.restore(state)
    for a, b in zip(other.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    torch.manual_seed(5)
    _step(model, average, 0.7)
    torch.manual_seed(5)
    _step(other, resumed, 0.7)
    for a, b in zip(resumed.module.state_dict().values(), average.module.state_dict().values()):
        assert torch.allclose(a.float(), b.float())


def test_a_checkpoint_written_without_averaging_starts_the_average_from_its_weights(tmp_path):
    model = _net(0)
    path = save_checkpoint(tmp_path / "last.pt", model, {"epoch": 1})
    other = _net(1)
    resumed = WeightAverage(other, 0.9)
    resumed.restore(read_checkpoint(path))
    assert torch.equal(resumed.module[0].weight, model[0].weight)
    assert torch.equal(other[0].weight, model[0].weight)


def test_bad_decay_is_named():
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_finetune_validates_and_keeps_the_average(kium_root, tmp_path):
    cfg = write_config(tmp_path, train={"ema_decay": 0.5})
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["finetune", "--root", str(kium_root), "--out", str(out),
                                      "--config", str(cfg), "--folds", "2"])
    assert result.exit_code == 0, result.output
    last = read_checkpoint(out / "fold_0" / "last.pt")
    # 5 training patients at 4 per step: 2 steps per epoch, 2 epochs, one update per step
    assert last["ema_steps"] == 4
    trained, kept = last["trained_state_dict"], last["state_dict"]
    assert trained.keys() == kept.keys()
    differ = [k for k in kept if kept[k].is_floating_point() and not torch.equal(kept[k],
                                                                                trained[k])]
    assert differ, "the saved weights are the last step's, not the average"
    report = json.loads((out / "report.json").read_text())
    assert not math.isnan(report["presence"]["value"])
