"""Experiment configuration: dataclasses filled from YAML, with unknown keys refused.

A typo in a YAML key would otherwise silently fall back to a default and change an experiment
without anyone noticing. A renamed key is refused with the new key's name; a saved run's
``config.yaml`` in the older words is read in today's (``read_run_config``).

This module sits above every package it configures and below those that run experiments
(inference, workflows), so each section is the configured package's own dataclass.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import AneurysmError, ConfigError
from .model.config import ModelConfig
from .preprocessing.config import PreprocessConfig
from .projection.config import ProjectionConfig
from .training.config import AugmentConfig, LossWeights, TrainConfig

T = TypeVar("T")


def default_cache_dir() -> str:
    return os.environ.get("ANEURYSM_CACHE", str(Path.home() / ".cache" / "aneurysm"))


@dataclass(frozen=True)
class DataConfig:
    cache_dir: str = field(default_factory=default_cache_dir)
    workers: int = 0  # 0 = one per CPU core


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        k = getattr(self.model.settings, "stem_unshuffle", 1)
        if self.preprocess.image_size % k:
            raise ValueError(f"preprocess.image_size {self.preprocess.image_size} must be a "
                             f"multiple of model.{self.model.name}.stem_unshuffle {k}")


#: (section, old key) -> the key that replaced it
RENAMED = {
    ("model", "head"): "model.name",
    **{("model", k): f"model.dense.{k}" for k in (
        "width", "encoder_layers", "encoder_block", "decoder_channels", "pool_sharpness",
        "stem_unshuffle")},
    ("model", "backbone"): "model.global.backbone",
    ("model", "backbone_weights"): "model.global.backbone_weights",
    ("train", "map_loss_weight"): "loss.maps",
    ("train", "map_focal_gamma"): "loss.map_gamma",
    ("train", "view_loss_weight"): "loss.views",
    ("train", "artery_loss_weight"): "loss.arteries",
    ("train", "aux_point_weight"): "loss.points",
}
#: (section, key) -> its only value before it was removed: studies over 3 seeds found no use
#: for the others (docs/evidence.md, "Removed knobs")
REMOVED = {("model", "cross_view"): "none", ("model", "cross_view_band"): 3,
           ("model", "view_pool"): "noisy_or", ("train", "map_loss_floor"): 0.0,
           ("train", "map_loss_balance"): False, ("train", "ema_decay"): 0.0}


def _build(cls: type[T], values: Any, where: str) -> T:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    _refuse_old_keys(values, where)
    if hasattr(cls, "from_mapping"):  # a section that nests its own settings (model:)
        return cls.from_mapping(values, where, _build)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; valid keys: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = _coerce(hint, value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a section's own check (__post_init__): one line, no traceback
        raise ConfigError(f"{where}: {exc}") from None


def _refuse_old_keys(values: dict, where: str) -> None:
    origin, _, section = where.rpartition(".")
    for key in values:
        if (section, key) in RENAMED:
            raise ConfigError(f"{origin}: {section}.{key} was renamed: use "
                              f"{RENAMED[section, key]}")
        if (section, key) in REMOVED:
            raise ConfigError(f"{origin}: {section}.{key} was removed: it did not help over 3 "
                              "seeds (docs/evidence.md, Removed knobs)")


def migrate(values: dict) -> dict:
    """A config mapping written in older words, in today's: renamed keys moved, removed knobs
    dropped where they held their only remaining value (a run that used another one cannot be
    rebuilt, and says so)."""
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for (section, key), value in REMOVED.items():
        if key in values.get(section, {}):
            old = values[section].pop(key)
            if old != value:
                raise ConfigError(f"{section}.{key}: this run used {old!r}, which was removed "
                                  "(docs/evidence.md, Removed knobs)")
    model = values.get("model", {})
    name = model.pop("head", None) or model.get("name", "dense")
    model["name"] = name
    for (section, key), new in RENAMED.items():
        if key in values.get(section, {}):
            value = values[section].pop(key)
            target, *rest = new.split(".")
            if target == "model" and rest[0] != name:  # another model's setting: not used
                continue
            node = values.setdefault(target, {})
            for part in rest[:-1]:
                node = node.setdefault(part, {})
            node[rest[-1]] = value
    return values


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is int and value == "auto" and where.endswith(".batch_size"):
        return 0  # train.batch_size: auto
    if hint in (int, float, str, bool):
        if hint is bool and not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if hint is float and not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return hint(value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(value) if origin is tuple else list(value)
    return value


def load_config(path: str | Path | None = None, overrides: dict[str, dict] | None = None,
                cls: type[T] = ExperimentConfig) -> T:
    """Defaults, then the YAML file, then ``overrides`` ({section: {key: value}})."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    for section, entries in (overrides or {}).items():
        values.setdefault(section, {})
        entries = {k: v for k, v in entries.items() if v is not None}
        if section == "model":
            _switch_model(values[section], entries)
        values[section].update(entries)
    return _build(cls, values, str(path) if path else "config")


def _switch_model(model: dict, entries: dict) -> None:
    """An override naming another model drops the settings of the one it replaces (a preset's
    ``model.dense:``), which that model would refuse as unknown keys."""
    old = model.get("name", "dense")
    if entries.get("name", old) != old:
        model.pop(old, None)


def with_overrides(config: T, overrides: dict[str, dict]) -> T:
    """``config`` with ``overrides`` ({section: {key: value}}) applied; a dict value updates a
    nested section key by key (``{"augment": {"projections": {"enabled": False}}}``)."""
    values = config_to_dict(config)
    for section, entries in overrides.items():
        if section not in values:
            raise ConfigError(f"config: unknown section {section!r}; valid: {sorted(values)}")
        if section == "model":
            _switch_model(values[section], entries)
        for key, value in entries.items():
            if isinstance(value, dict) and isinstance(values[section].get(key), dict):
                values[section][key].update(value)
            else:  # a plain value, or an unknown key (which config_from_dict names)
                values[section][key] = value
    return config_from_dict(values, type(config))


def config_to_dict(config: Any) -> dict:
    """Plain YAML-ready values; a section that nests its own settings lays itself out."""
    if hasattr(config, "to_mapping"):
        return config.to_mapping()
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name))
                for f in dataclasses.fields(config)}
    if isinstance(config, tuple):
        return [config_to_dict(v) for v in config]
    return config


def config_from_dict(values: dict, cls: type[T] = ExperimentConfig) -> T:
    return _build(cls, values, "config")


def read_run_config(run_dir: Path) -> ExperimentConfig:
    """The config a run folder was made with (its ``config.yaml``), in today's words."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise AneurysmError(f"{run_dir}: not a run folder (no config.yaml)")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections")
    return _build(ExperimentConfig, migrate(values), str(path))
