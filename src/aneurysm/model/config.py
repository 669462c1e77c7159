"""Model settings (the ``model:`` section of a YAML config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ConfigError

HEADS = ("dense", "global")
CROSS_VIEW = ("none", "biplane")
VIEW_POOLS = ("noisy_or", "max")


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
    #: dense head: "biplane" lets each view's pooling see its partner's map (LI-A with LI-B):
    #: a frontal and a lateral view of one injection share the head-foot axis, so a 3-D lesion
    #: responds in the same rows of both, while a crossing of vessels seen in one view does not.
    #: "none" pools each view alone
    cross_view: str = "none"
    #: rows of tolerance (map cells, a running maximum) for the partner's rows not lining up:
    #: the frontal tube's tilt and the two frames' positioning
    cross_view_band: int = 3
    #: dense head: a study's presence from its views' logits, "noisy_or" (any of them, each
    #: sighting adding evidence) or "max" (a log-sum-exp at ``pool_sharpness``: the clearest
    #: sighting decides, so many weak false alarms in a clean study add nothing)
    view_pool: str = "noisy_or"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ConfigError(f"model.head must be one of {HEADS}, got {self.head!r}")
        if self.head == "dense" and (len(self.encoder_layers) != 4
                                     or len(self.decoder_channels) not in (3, 4)):
            raise ConfigError("model.encoder_layers needs 4 entries and model.decoder_channels 3 "
                              "(a map at stride 4) or 4 (stride 2)")
        if self.stem_unshuffle < 1:
            raise ConfigError(f"model.stem_unshuffle must be >= 1, got {self.stem_unshuffle}")
        if self.cross_view not in CROSS_VIEW:
            raise ConfigError(f"model.cross_view must be one of {CROSS_VIEW}, got "
                              f"{self.cross_view!r}")
        if self.view_pool not in VIEW_POOLS:
            raise ConfigError(f"model.view_pool must be one of {VIEW_POOLS}, got "
                              f"{self.view_pool!r}")
        if self.cross_view_band < 1 or self.cross_view_band % 2 == 0:
            raise ConfigError(f"model.cross_view_band must be an odd number >= 1, got "
                              f"{self.cross_view_band}")
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
        if self.head == "dense" and self.cross_view != "none":  # it adds a weight
            keep += ("cross_view",)
        values = asdict(self)
        return {k: list(values[k]) if isinstance(values[k], tuple) else values[k] for k in keep}
