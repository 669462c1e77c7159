"""Backbones by config string: ``timm/<name>`` or ``monai/<name>``, one input channel.

Weights never come from the network: ``pretrained`` is always False and a local file path may
be given instead.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError

_MONAI = {
    "densenet121": "DenseNet121", "densenet169": "DenseNet169", "densenet201": "DenseNet201",
}


class _MonaiFeatures(nn.Module):
    """A MONAI classifier network with its last linear layer removed: features out."""

    def __init__(self, name: str) -> None:
        super().__init__()
        from monai.networks import nets

        if name not in _MONAI:
            raise ConfigError(f"unknown MONAI backbone {name!r}; known: {sorted(_MONAI)}")
        net = getattr(nets, _MONAI[name])(spatial_dims=2, in_channels=1, out_channels=1)
        self.num_features = net.class_layers.out.in_features
        net.class_layers.out = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def create_backbone(spec: str, weights: str | None = None) -> nn.Module:
    """Build a feature extractor with ``num_features``; load ``weights`` from a local file."""
    library, _, name = spec.partition("/")
    if library == "timm":
        import timm

        try:
            model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=1)
        except RuntimeError as exc:  # timm's "Unknown model"
            raise ConfigError(f"backbone {spec!r}: {exc}") from None
    elif library == "monai":
        model = _MonaiFeatures(name)
    else:
        raise ConfigError(f"backbone {spec!r}: expected 'timm/<name>' or 'monai/<name>'")
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise ConfigError(f"{path}: backbone weights file not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        missing, unexpected = model.load_state_dict(state, strict=False)
        bad = [k for k in missing if not k.startswith(("fc.", "head", "classifier"))]
        if bad:
            raise ConfigError(f"{path}: weights do not fit {spec}: missing {bad[:5]}"
                              f"{' ...' if len(bad) > 5 else ''}")
        del unexpected  # a classifier head in the file is fine: we use features only
    return model
