"""The model registry: name -> builder, as timm's ``_model_entrypoints``. ``model.name`` picks
one. A builder takes the ``ModelConfig`` and returns an ``nn.Module`` with the batch contract of
``docs/extending.md`` (images, view ids, view mask in; presence and location logits out).

Built-in builders are named as "module:attribute" strings and imported on first build, so
reading a config or ``aneurysm --help`` does not import MONAI or timm.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from .settings import DenseSettings, GlobalSettings, NoSettings


@dataclass(frozen=True)
class ModelSpec:
    builder: Callable | str  # ModelConfig -> nn.Module, or "module:attribute" naming one
    settings: type = NoSettings  # the dataclass read from ``model.<name>:``
    draws_maps: bool = False  # outputs per-view aneurysm maps (``predict --maps``)

    def build(self, config):
        builder = self.builder
        if isinstance(builder, str):
            module, attribute = builder.split(":")
            builder = getattr(importlib.import_module(module), attribute)
        return builder(config)


MODELS: dict[str, ModelSpec] = {
    "dense": ModelSpec("aneurysm.model.dense:DenseMultiViewNet", DenseSettings, draws_maps=True),
    "global": ModelSpec("aneurysm.model.global_net:build_global", GlobalSettings),
}


def register_model(name: str, builder: Callable | str, settings: type = NoSettings,
                   draws_maps: bool = False, replace: bool = False) -> ModelSpec:
    """Add a model under ``name``; ``settings`` is a frozen dataclass with defaults."""
    if name in MODELS and not replace:
        raise ConfigError(f"model {name!r} is already registered")
    MODELS[name] = ModelSpec(builder, settings, draws_maps)
    return MODELS[name]


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"model.name must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name]


def build_model(config):
    """The model ``config.name`` names (a ``ModelConfig``), with ``config``'s settings."""
    return model_spec(config.name).build(config)
