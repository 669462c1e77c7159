"""Model settings (the ``model:`` section of a YAML config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ConfigError

HEADS = ("dense", "global")


@dataclass(frozen=True)
class ModelConfig:
    #: "dense": an aneurysm map per view, pooled by smooth maxima (finds the lesion);
    #: "global": one pooled feature per view and attention over views (kept for comparison).
    head: str = "dense"
    backbone: str = "timm/test_resnet"  # global head: the per-view feature extractor
    backbone_weights: str = ""  # global head: a local file; never downloaded
    embed_dim: int = 128
    dropout: float = 0.2
    width: int = 16  # dense head: channels of the first encoder stage, doubled at each stage
    encoder_layers: tuple[int, ...] = (1, 1, 1, 1)  # dense head: residual blocks per stage
    #: dense head: MONAI ResNet block, "basic" or "bottleneck" ([3, 4, 6, 3] bottleneck at width
    #: 64 is a ResNet50-class encoder)
    encoder_block: str = "basic"
    #: dense head: decoder blocks at strides 16, 8, 4; a fourth entry adds one at stride 2, so
    #: a 2-6 px aneurysm at 128 px covers a few map cells instead of one
    decoder_channels: tuple[int, ...] = (64, 32, 16)
    pool_sharpness: float = 5.0  # dense head: r of the log-sum-exp smooth maximum over a map
    #: dense head: fold each k x k pixel block into k^2 channels before the encoder, so a view at
    #: k times the resolution costs the encoder what the smaller one does while its first
    #: layer still sees every pixel; the map's stride becomes 4k. 1 = off
    stem_unshuffle: int = 1

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ConfigError(f"model.head must be one of {HEADS}, got {self.head!r}")
        if self.head == "dense" and (len(self.encoder_layers) != 4
                                     or len(self.decoder_channels) not in (3, 4)):
            raise ConfigError("model.encoder_layers needs 4 entries and model.decoder_channels 3 "
                              "(a map at stride 4) or 4 (stride 2)")
        if self.stem_unshuffle < 1:
            raise ConfigError(f"model.stem_unshuffle must be >= 1, got {self.stem_unshuffle}")
        if self.encoder_block not in ("basic", "bottleneck"):
            raise ConfigError(f"model.encoder_block must be basic or bottleneck, got "
                              f"{self.encoder_block!r}")

    @property
    def map_stride(self) -> int:
        """Input pixels per map cell of the dense head."""
        return (4 if len(self.decoder_channels) == 3 else 2) * self.stem_unshuffle

    def architecture(self) -> dict:
        """What a checkpoint must match to be loaded into this model (not weights or dropout)."""
        keep = (("head", "embed_dim") + (("backbone",) if self.head == "global" else
                                          ("width", "encoder_layers", "decoder_channels")))
        if self.head == "dense" and self.encoder_block != "basic":  # older checkpoints lack it
            keep += ("encoder_block",)
        if self.head == "dense" and self.stem_unshuffle != 1:
            keep += ("stem_unshuffle",)
        values = asdict(self)
        return {k: list(values[k]) if isinstance(values[k], tuple) else values[k] for k in keep}
