import dataclasses
from pathlib import Path

import pytest

from aneurysm.config import ExperimentConfig, load_config, with_overrides
from aneurysm.errors import ConfigError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_cpu_preset_documents_the_builtin_defaults():
    cpu = load_config(CONFIGS / "cpu.yaml")
    default = ExperimentConfig()
    assert dataclasses.replace(cpu, data=default.data) == default


def test_gpu_preset_is_realistic_for_real_data():
    gpu = load_config(CONFIGS / "gpu.yaml")
    assert gpu.preprocess.image_size >= 512
    assert gpu.model.name == "dense" and gpu.model.settings.width >= 32
    assert gpu.train.precision == "bf16" and gpu.train.device == "cuda"


def test_every_config_in_the_folder_loads():
    for path in CONFIGS.glob("*.yaml"):
        load_config(path)


def test_overrides_update_nested_sections_key_by_key_and_refuse_unknown_keys():
    base = ExperimentConfig()
    config = with_overrides(base, {"augment": {"projections": {"enabled": False}},
                                   "train": {"pretrain_lr": 0.005}})
    assert not config.augment.projections.enabled and config.train.pretrain_lr == 0.005
    focal = with_overrides(base, {"loss": {"map_gamma": 0.0}, "model": {"dense": {"width": 8}}})
    assert focal.loss.map_gamma == 0.0 and base.loss.map_gamma == 2.0
    assert focal.model.settings.width == 8 and focal.model.settings.decoder_channels == (64, 32, 16)
    pooled = with_overrides(base, {"model": {"name": "global"}})
    assert pooled.model.settings.backbone == "timm/test_resnet"
    assert config.augment.projections.mu_high == base.augment.projections.mu_high  # kept
    assert config.train.lr == base.train.lr and base.augment.projections.enabled
    with pytest.raises(ConfigError, match="unknown keys"):
        with_overrides(base, {"train": {"pretrain_rate": 0.005}})
    with pytest.raises(ConfigError, match="unknown section 'training'"):
        with_overrides(base, {"training": {"lr": 0.005}})
    posed = with_overrides(base, {"projection": {"poses": 3}})
    # extra poses leave the canonical views' cache key alone
    assert posed.projection.poses == 3
    assert posed.projection.cache_params() == base.projection.cache_params()
    with pytest.raises(ConfigError, match="poses must be >= 1"):
        with_overrides(base, {"projection": {"poses": 0}})
    with pytest.raises(ConfigError, match="train.loader_workers must be >= 0"):
        with_overrides(base, {"train": {"loader_workers": -1}})


@pytest.mark.parametrize("section, key, new", [
    ("model", "head", "model.name"), ("model", "width", "model.dense.width"),
    ("model", "backbone", "model.global.backbone"), ("train", "map_loss_weight", "loss.maps"),
    ("train", "aux_point_weight", "loss.points"), ("train", "map_focal_gamma", "loss.map_gamma")])
def test_a_renamed_key_is_refused_with_one_line_naming_the_new_one(tmp_path, section, key, new):
    path = tmp_path / "old.yaml"
    path.write_text(f"{section}: {{{key}: 1}}\n")
    with pytest.raises(ConfigError, match=f"{section}.{key} was renamed: use {new}$"):
        load_config(path)


@pytest.mark.parametrize("section, key", [("model", "cross_view"), ("model", "view_pool"),
                                          ("train", "ema_decay"), ("train", "map_loss_floor"),
                                          ("train", "map_loss_balance")])
def test_a_removed_knob_is_refused_and_points_at_the_evidence(tmp_path, section, key):
    path = tmp_path / "old.yaml"
    path.write_text(f"{section}: {{{key}: 1}}\n")
    with pytest.raises(ConfigError, match=f"{section}.{key} was removed.*docs/evidence.md"):
        load_config(path)


def test_a_run_saved_in_the_older_words_reads_in_todays(tmp_path):
    from aneurysm.config import read_run_config

    (tmp_path / "config.yaml").write_text(
        "model: {head: dense, width: 8, backbone: timm/test_resnet, cross_view: none,\n"
        "        view_pool: noisy_or, embed_dim: 16}\n"
        "train: {map_loss_weight: 0.5, ema_decay: 0.0, map_loss_floor: 0.0, epochs: 3}\n")
    config = read_run_config(tmp_path)
    assert config.model.name == "dense" and config.model.settings.width == 8
    assert config.model.embed_dim == 16 and config.loss.maps == 0.5 and config.train.epochs == 3
    (tmp_path / "config.yaml").write_text("train: {ema_decay: 0.99}\n")
    with pytest.raises(ConfigError, match="this run used 0.99, which was removed"):
        read_run_config(tmp_path)



def test_a_command_line_model_switch_drops_the_other_models_settings():
    """A preset names model.dense settings; --model global (an override) must not carry them."""
    config = load_config(CONFIGS / "gpu.yaml", {"model": {"name": "global"}})
    assert config.model.name == "global" and config.model.embed_dim == 256
    assert config.model.settings.backbone == "timm/test_resnet"
    assert load_config(CONFIGS / "gpu.yaml", {"model": {"name": None}}).model.settings.width == 32
