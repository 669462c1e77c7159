"""Experiment configuration: dataclasses filled from YAML, with unknown keys refused.

A typo in a YAML key would otherwise silently fall back to a default and change an experiment
without anyone noticing.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError
from .model.config import ModelConfig
from .preprocessing.angiogram import PreprocessConfig
from .projection.render import ProjectionConfig
from .training.augment import AugmentConfig
from .training.config import TrainConfig

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

    def __post_init__(self) -> None:
        k = self.model.stem_unshuffle
        if self.model.head == "dense" and self.preprocess.image_size % k:
            raise ValueError(f"preprocess.image_size {self.preprocess.image_size} must be a "
                             f"multiple of model.stem_unshuffle {k}")


def _build(cls: type[T], values: Any, where: str) -> T:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
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
        values[section].update({k: v for k, v in entries.items() if v is not None})
    return _build(cls, values, str(path) if path else "config")


def with_overrides(config: T, overrides: dict[str, dict]) -> T:
    """``config`` with ``overrides`` ({section: {key: value}}) applied; a dict value updates a
    nested section key by key (``{"augment": {"projections": {"enabled": False}}}``)."""
    values = config_to_dict(config)
    for section, entries in overrides.items():
        if section not in values:
            raise ConfigError(f"config: unknown section {section!r}; valid: {sorted(values)}")
        for key, value in entries.items():
            if isinstance(value, dict) and isinstance(values[section].get(key), dict):
                values[section][key].update(value)
            else:  # a plain value, or an unknown key (which config_from_dict names)
                values[section][key] = value
    return config_from_dict(values, type(config))


def config_to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def config_from_dict(values: dict, cls: type[T] = ExperimentConfig) -> T:
    return _build(cls, values, "config")
