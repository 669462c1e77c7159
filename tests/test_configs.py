from pathlib import Path

import dataclasses

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
    assert gpu.model.head == "dense" and gpu.model.width >= 32
    assert gpu.train.precision == "bf16" and gpu.train.device == "cuda"


def test_every_config_in_the_folder_loads():
    for path in CONFIGS.glob("*.yaml"):
        load_config(path)


def test_overrides_update_nested_sections_key_by_key_and_refuse_unknown_keys():
    base = ExperimentConfig()
    config = with_overrides(base, {"augment": {"projections": {"enabled": False}},
                                   "train": {"pretrain_lr": 0.005}})
    assert not config.augment.projections.enabled and config.train.pretrain_lr == 0.005
    balanced = with_overrides(base, {"train": {"map_loss_balance": True}})
    assert balanced.train.loss_weights().map_balance and not base.train.loss_weights().map_balance
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
    for key in ("map_loss_floor", "loader_workers"):
        with pytest.raises(ConfigError, match=f"train.{key} must be >= 0"):
            with_overrides(base, {"train": {key: -1}})

