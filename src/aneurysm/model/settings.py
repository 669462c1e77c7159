"""Each registered model's own settings (``model.<name>:`` in YAML), as frozen dataclasses.

Light on purpose: reading a config must not import MONAI or timm.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


def listed(values: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


@dataclass(frozen=True)
class DenseSettings:
    """``model.dense``: the per-view encoder-decoder that draws an aneurysm map."""
    width: int = 16  # channels of the first encoder stage, doubled at each stage
    encoder_layers: tuple[int, ...] = (1, 1, 1, 1)  # residual blocks per stage
    #: MONAI ResNet block, "basic" or "bottleneck" ([3, 4, 6, 3] bottleneck at width 64 is a
    #: ResNet50-class encoder)
    encoder_block: str = "basic"
    #: decoder blocks at strides 16, 8, 4; a fourth entry adds one at stride 2, so a 2-6 px
    #: aneurysm at 128 px covers a few map cells instead of one
    decoder_channels: tuple[int, ...] = (64, 32, 16)
    pool_sharpness: float = 5.0  # r of the log-sum-exp smooth maximum over a map
    #: fold each k x k pixel block into k^2 channels before the encoder, so a view at k times
    #: the resolution costs the encoder what the smaller one does while its first layer still
    #: sees every pixel; the map's stride becomes 4k. 1 = off
    stem_unshuffle: int = 1
    #: the second look (``model.second_look``): per view, this many crops where the map responds
    #: most, read at ``crop_size`` px each, covering ``crop_field`` of the view's side, from the
    #: fine views (``preprocess.fine_size``); 0 = off. At 0.125 a crop is 16 px of a 128-px view
    #: and 64 px of a 512-px one.
    crops: int = 0
    crop_size: int = 32
    crop_field: float = 0.125
    crop_width: int = 16  # channels of the patch network's first stage, doubled at each stage

    def __post_init__(self) -> None:
        if len(self.encoder_layers) != 4 or len(self.decoder_channels) not in (3, 4):
            raise ConfigError("model.dense.encoder_layers needs 4 entries and "
                              "model.dense.decoder_channels 3 (a map at stride 4) or 4 (stride 2)")
        if self.stem_unshuffle < 1:
            raise ConfigError(f"model.dense.stem_unshuffle must be >= 1, got "
                              f"{self.stem_unshuffle}")
        if self.crops < 0 or self.crop_size < 8 or not 0 < self.crop_field <= 1:
            raise ConfigError("model.dense.crops must be >= 0, crop_size >= 8 and crop_field in "
                              f"(0, 1], got {self.crops}, {self.crop_size}, {self.crop_field}")
        if self.encoder_block not in ("basic", "bottleneck"):
            raise ConfigError(f"model.dense.encoder_block must be basic or bottleneck, got "
                              f"{self.encoder_block!r}")

    @property
    def map_stride(self) -> int:
        """Input pixels per map cell."""
        return (4 if len(self.decoder_channels) == 3 else 2) * self.stem_unshuffle

    @property
    def backbone_name(self) -> str:
        return "monai/resnet-unet"

    def architecture(self) -> dict:
        keep = ["width", "encoder_layers", "decoder_channels"]
        if self.encoder_block != "basic":  # older checkpoints lack it
            keep.append("encoder_block")
        if self.stem_unshuffle != 1:
            keep.append("stem_unshuffle")
        if self.crops:  # the patch network's weights; the crop count and field are not
            keep += ["crop_size", "crop_width"]
        return listed({k: getattr(self, k) for k in keep})


@dataclass(frozen=True)
class GlobalSettings:
    """``model.global``: a timm backbone pooled to one feature per view (the baseline)."""
    backbone: str = "timm/test_resnet"  # the per-view feature extractor
    backbone_weights: str = ""  # a local file; never downloaded

    @property
    def backbone_name(self) -> str:
        return self.backbone

    def architecture(self) -> dict:
        return {"backbone": self.backbone}


@dataclass(frozen=True)
class NoSettings:
    """For a registered model that has no settings of its own."""
    @property
    def backbone_name(self) -> str:
        return ""

    def architecture(self) -> dict:
        return {}
