"""Model settings (the ``model:`` section of a YAML config): the registered model's name, what
every model shares, and that model's own settings nested under its name::

    model:
      name: dense
      embed_dim: 128
      dense: {width: 16, decoder_channels: [64, 32, 16]}

Light on purpose: reading a config must not import MONAI or timm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import ConfigError
from .registry import model_spec
from .settings import listed


@dataclass(frozen=True)
class ModelConfig:
    #: a name in the model registry (``aneurysm.model.registry``): "dense" draws an aneurysm
    #: map per view (finds the lesion); "global" pools one feature per view (the baseline)
    name: str = "dense"
    embed_dim: int = 128
    dropout: float = 0.2
    #: the named model's own settings (``model.<name>:`` in YAML); None = its defaults
    settings: Any = None

    def __post_init__(self) -> None:
        spec = model_spec(self.name)  # a one-line error naming the registered models
        if self.settings is None:
            object.__setattr__(self, "settings", spec.settings())
        elif not isinstance(self.settings, spec.settings):
            raise ConfigError(f"model.{self.name}: settings of type "
                              f"{type(self.settings).__name__}, expected {spec.settings.__name__}")

    @classmethod
    def create(cls, name: str = "dense", **values: Any) -> "ModelConfig":
        """For notebooks and tests: shared keys and the named model's own settings, flat
        (``ModelConfig.create("dense", width=8, embed_dim=16)``)."""
        shared = {k: values.pop(k) for k in ("embed_dim", "dropout") if k in values}
        settings = model_spec(name).settings(**{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in values.items()})
        return cls(name=name, settings=settings, **shared)

    @property
    def map_stride(self) -> int:
        """Input pixels per map cell (a model without a map is supervised at stride 4)."""
        return getattr(self.settings, "map_stride", 4)

    @property
    def second_look(self) -> bool:
        """Whether the model reads crops from the fine views (``preprocess.fine_size``)."""
        return bool(getattr(self.settings, "crops", 0))

    @property
    def draws_maps(self) -> bool:
        """Whether the model draws per-view aneurysm maps (``predict --maps``)."""
        return model_spec(self.name).draws_maps

    def architecture(self) -> dict:
        """What a checkpoint must match to be loaded into this model (not weights or dropout)."""
        return {"model": self.name, "embed_dim": self.embed_dim,
                **self.settings.architecture()}

    @classmethod
    def from_mapping(cls, values: dict, where: str, build) -> "ModelConfig":
        """From the YAML section: the shared keys, and the nested ``<name>:`` settings built by
        ``build(settings_class, mapping, where)`` (the strict config loader)."""
        values = dict(values)
        name = values.pop("name", cls.name)
        if not isinstance(name, str):
            raise ConfigError(f"{where}.name: expected a model name, got {name!r}")
        spec = model_spec(name)
        nested = values.pop(name, {})
        shared = {f.name for f in fields(cls)} - {"name", "settings"}
        unknown = sorted(set(values) - shared)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; valid keys: "
                              f"{sorted(shared | {'name', name})}")
        settings = build(spec.settings, nested or {}, f"{where}.{name}")
        base = build(_Shared, values, where)
        return cls(name=name, settings=settings, **asdict(base))

    def to_mapping(self) -> dict:
        return {"name": self.name, "embed_dim": self.embed_dim, "dropout": self.dropout,
                self.name: listed(asdict(self.settings))}


@dataclass(frozen=True)
class _Shared:
    """The keys every model shares, for the strict loader to check their types."""
    embed_dim: int = 128
    dropout: float = 0.2
