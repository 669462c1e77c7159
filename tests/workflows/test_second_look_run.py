"""The second look end to end: fine-tuned from a pretraining that has one, predicted with, and
drawn on the explanation montages."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import write_config

from aneurysm.cli.main import cli
from aneurysm.config import read_run_config
from aneurysm.data.arrays import build_arrays, image_caches
from aneurysm.inference.maps import predict_maps
from aneurysm.model.checkpoint import load_model
from aneurysm.registry import get_adapter

pytestmark = pytest.mark.slow


def test_pretrain_finetune_and_predict_with_a_second_look(kium_root, external_root, tmp_path):
    cfg = write_config(tmp_path, preprocess={"image_size": 32, "fine_size": 64},
                       model={"embed_dim": 32, "dense": {"width": 8, "crops": 2,
                                                         "crop_size": 16, "crop_width": 8}})
    runner = CliRunner()
    pre = tmp_path / "pre"
    result = runner.invoke(cli, ["pretrain", "--source", "external", "--data-root",
                                 str(external_root), "--config", str(cfg), "--out", str(pre)])
    assert result.exit_code == 0, result.output
    # its crops were read from the volumes cast again at the fine size, not the views enlarged
    assert list((tmp_path / "cache" / "projections").rglob("*.fine64.png"))
    run = tmp_path / "run"
    result = runner.invoke(cli, ["finetune", "--root", str(kium_root), "--out", str(run),
                                 "--config", str(cfg), "--folds", "2",
                                 "--init", str(pre / "pretrained.safetensors")])
    assert result.exit_code == 0, result.output
    maps = tmp_path / "maps"
    result = runner.invoke(cli, ["predict", "--run", str(run), "--input",
                                 str(kium_root / "test_set"), "--output", str(tmp_path / "o.csv"),
                                 "--maps", str(maps)])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["Aneurysm"].between(0, 1).all() and len(list(maps.glob("*.png"))) == len(out)
    # the montages mark the crops each view's second look read, with their scores
    config = read_run_config(run)
    cache, fine = image_caches(config.data.cache_dir, config.preprocess,
                               config.model.second_look)
    arrays, _, _ = build_arrays(get_adapter("kium").load(kium_root, "test"), cache,
                                fine_cache=fine, progress=False)
    assert arrays.fine is not None and arrays.fine.shape[-1] == 64
    model = load_model(run / "fold_0" / "best.safetensors", config.model)
    view_maps = predict_maps([model], arrays, config.train.predict_options(),
                             torch.device("cpu"))
    assert view_maps.crops.shape == (len(arrays), arrays.images.shape[1], 2, 3)
    assert ((view_maps.crops >= 0) & (view_maps.crops <= 1)).all()
    assert view_maps.crop_field == 0.125
    # does the second look see the sac: every marked view of the held-out positives counted
    table = tmp_path / "hits.json"
    sheet = tmp_path / "sheet.png"
    for extra in (["--sheet", str(sheet)], ["--pretrained"]):
        result = runner.invoke(cli, ["study", "crops", str(run), "--kium", str(kium_root),
                                     "--json", str(table), *extra])
        assert result.exit_code == 0, result.output
        assert "| all sizes |" in result.output
        found = json.loads(table.read_text())[0]
        assert found["checkpoint"].endswith("pretrained.safetensors") == ("--pretrained" in extra)
        positions = pd.read_csv(kium_root / "aneurysm_positions.csv")
        marked = positions[positions["set"] == "test_set"]
        assert sum(v["views"] for v in found["views"].values()) == len(marked)
        for v in found["views"].values():
            assert v["views"] == 0 or 0 <= v["covered"] <= 1
        for scores in found["auroc"].values():
            assert all(math.isnan(a) or 0 <= a <= 1 for a in scores.values())
    # the sheet: a row per view with a sac (up to 8), a tile per crop the map chose
    from PIL import Image

    with Image.open(sheet) as im:
        width, height = im.size
        pixels = np.asarray(im)
    assert width == 2 * (96 + 6) + 6
    assert (height - 6) % (96 + 6 + 16) == 0
    assert (height - 6) // (96 + 6 + 16) == min(len(marked.groupby(["Index", "view"])), 8)
    assert pixels.min() < 128 < pixels.max()  # vessels drawn on a light ground
    # a run without a second look is one line
    result = runner.invoke(cli, ["study", "crops", str(pre), "--kium", str(kium_root)])
    assert result.exit_code == 2 and "is this a finished `aneurysm finetune` run?" in \
        result.output.strip().splitlines()[-1], result.output
