"""The dense multi-view model: an aneurysm map per view, pooled into views, studies and locations.

Global pooling dilutes a 3-pixel aneurysm among thousands of pixels; a map keeps it where it is.
A shared MONAI encoder-decoder draws a logit map at stride 4 (or 2) on every view. A view's
evidence is a smooth maximum of its map; a study's is the noisy-OR of its views (absent views
masked), so one clear sighting is enough. Locations are read where each view's map responds:
the decoder's features there, the response's position and the view type give 21 logits per
view, combined over views by noisy-OR, so an ACOM aneurysm seen in two views counts once. Where
external sources say where the aneurysm is, the map is supervised per pixel; on K-ium only the
pooled outputs are. With ``crops`` set, a second look (``second_look``) reads native-resolution
crops where the map responds and adds what it sees to each view's evidence and locations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.nets import ResNet
from monai.networks.nets.basic_unet import UpCat
from torch import nn

from ..schema import ARTERIES, NUM_LOCATIONS, VIEW_TYPES
from .config import ModelConfig
from .present_views import on_present_views
from .second_look import PatchNet, crop_evidence, peak_centres, sample_crops
from .strided_pointwise import subsample_pointwise

_ABSENT = -30.0  # logit of every cell of an absent view
_PRIOR = 0.01  # initial per-cell aneurysm probability, so the first steps are not noise
#: crops per view a training step adds to the map's: the known footprint (or a vessel point
#: where none is known) and two random vessel points, so the patch network sees lesions and
#: their mimics, not only what the map already finds
TRAINING_CROPS = 3


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, accurate at both ends."""
    x = x.clamp(max=-1e-7)
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def noisy_or_logit(log_not: torch.Tensor) -> torch.Tensor:
    """Logit of P(any) from log P(none) = sum of log(1 - p_i)."""
    log_not = log_not.clamp(max=-1e-7)
    return log1mexp(log_not) - log_not


def smooth_max(maps: torch.Tensor, sharpness: float) -> torch.Tensor:
    """Log-sum-exp pooling over the last two dimensions: (1/r) log mean exp(r x).

    Rises with any single cell; tends to the mean as r -> 0 and to the maximum as r grows.
    """
    flat = maps.flatten(-2)
    return (torch.logsumexp(sharpness * flat, -1) - math.log(flat.shape[-1])) / sharpness


def pool_views(view_logits: torch.Tensor, view_mask: torch.Tensor) -> torch.Tensor:
    """(B, V) view logits -> (B,) study logits by noisy-OR over the present views: every
    sighting adds evidence."""
    keep = view_mask.to(view_logits.dtype)
    return noisy_or_logit((F.logsigmoid(-view_logits) * keep).sum(1))


class _UpCat(UpCat):
    """MONAI's ``UpCat`` that pads only when a size is odd. MONAI's calls a replicate pad of
    width zero on every pass, whose backward ``torch.compile`` cannot trace in channels-last
    memory; the result is the same."""

    def forward(self, x: torch.Tensor, x_e: torch.Tensor) -> torch.Tensor:
        x_0 = self.upsample(x)
        if x_e.shape[-2:] != x_0.shape[-2:]:  # odd edges after 2x pooling: one more on the right
            x_0 = F.pad(x_0, [0, int(x_e.shape[-1] != x_0.shape[-1]),
                              0, int(x_e.shape[-2] != x_0.shape[-2])], "replicate")
        return self.convs(torch.cat([x_e, x_0], dim=1))


class MapNet(nn.Module):
    """Per view: a MONAI ResNet encoder (strides 4-32) and a U-Net decoder of MONAI ``UpCat``
    blocks back to stride 4 (three blocks) or 2 (four), with a 1x1 map head. Returns (logit map,
    features) at that stride (times k with a k x k pixel-unshuffle stem)."""

    def __init__(self, width: int, layers: tuple[int, ...], decoder: tuple[int, ...],
                 block: str = "basic", unshuffle: int = 1) -> None:
        super().__init__()
        planes = [width, 2 * width, 4 * width, 8 * width]
        self.unshuffle = unshuffle
        self.encoder = ResNet(block, list(layers), planes, spatial_dims=2,
                              n_input_channels=unshuffle * unshuffle,
                              conv1_t_size=5, conv1_t_stride=2, feed_forward=False)
        subsample_pointwise(self.encoder)
        out = [p * (4 if block == "bottleneck" else 1) for p in planes]  # bottleneck expands x4
        # a fourth decoder block goes on to stride 2 on the stem's output (before its max-pool)
        ins = [out[3], *decoder[:-1]]
        skips = [out[2], out[1], out[0], width][:len(decoder)]
        self.decoder = nn.ModuleList(
            _UpCat(2, i, s, o, act=("relu", {"inplace": True}), norm="batch", bias=False,
                  upsample="nontrainable", interp_mode="nearest", align_corners=None)
            for i, s, o in zip(ins, skips, decoder))
        self.map_head = nn.Conv2d(decoder[-1], 1, kernel_size=1)
        nn.init.constant_(self.map_head.bias, math.log(_PRIOR / (1 - _PRIOR)))
        self.out_channels = decoder[-1]
        self.to(memory_format=torch.channels_last)  # a quarter faster on CPU, and on GPUs too

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        x = x.contiguous(memory_format=torch.channels_last)
        e = self.encoder
        x = e.act(e.bn1(e.conv1(x)))
        skips = [x][:len(self.decoder) - 3]  # stride 2: only a stride-2 map reads it
        x = e.maxpool(x)
        for layer in (e.layer1, e.layer2, e.layer3):
            x = layer(x)
            skips.append(x)
        x = e.layer4(x)
        for block, skip in zip(self.decoder, reversed(skips)):
            x = block(x, skip)
        return self.map_head(x)[:, 0], x


class DenseMultiViewNet(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.settings = dense = config.settings
        self.body = MapNet(dense.width, dense.encoder_layers, dense.decoder_channels,
                           dense.encoder_block, dense.stem_unshuffle)
        c, e = self.body.out_channels, config.embed_dim
        self.view_embedding = nn.Embedding(len(VIEW_TYPES), e)
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({
            "view_bias": nn.Embedding(len(VIEW_TYPES), 1),  # views differ in how often they show one
            "locations": nn.Sequential(nn.Linear(c + 2 + e, e), nn.ReLU(inplace=True),
                                       nn.Linear(e, NUM_LOCATIONS)),
            # which artery lies under each cell (0: none): vessel-aware pretraining, optional
            "arteries": nn.Conv2d(c, 1 + len(ARTERIES), kernel_size=1),
        })
        nn.init.zeros_(self.heads["view_bias"].weight)
        self.second_look = PatchNet(dense.crop_width, e) if dense.crops else None

    @property
    def training_crops(self) -> int:
        """Crops per view the training step adds beside the map's (``training.crops``)."""
        return TRAINING_CROPS if self.second_look is not None else 0

    def forward(self, images: torch.Tensor, view_ids: torch.Tensor, view_mask: torch.Tensor,
                fine: torch.Tensor | None = None, fine_theta: torch.Tensor | None = None,
                crop_centres: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """images (B, V, 1, S, S) float, view_ids (B, V) long, view_mask (B, V) bool. The second
        look reads ``fine`` (B, V, F, F) views, warped by ``fine_theta`` (B, V, 2, 3), and in
        training also crops at ``crop_centres`` (B, V, J, 2), (x, y) in [0, 1]."""
        b, v = images.shape[:2]
        present = view_mask.reshape(-1)
        flat = images.reshape(b * v, *images.shape[2:])
        h = w = max(images.shape[-1] // self.settings.map_stride, 1)
        dtype = self.heads["view_bias"].weight.dtype
        maps = torch.full((b * v, h, w), _ABSENT, device=images.device, dtype=dtype)
        feats = torch.zeros(b * v, self.body.out_channels, h, w, device=images.device, dtype=dtype)
        maps, feats = on_present_views(self.body, flat, present, (maps, feats))
        maps = maps.reshape(b, v, h, w)
        sharpness = self.settings.pool_sharpness
        view_logits = (smooth_max(maps, sharpness)
                       + self.heads["view_bias"](view_ids)[..., 0])
        # where each view responds: attention over its cells, sharp like the smooth maximum
        attention = torch.softmax(sharpness * maps.reshape(b * v, -1), -1)
        pooled = torch.einsum("nk,nck->nc", attention, feats.flatten(2))
        ys, xs = torch.meshgrid(torch.arange(h, device=images.device),
                                torch.arange(w, device=images.device), indexing="ij")
        grid = torch.stack([(xs.flatten() + 0.5) / w, (ys.flatten() + 0.5) / h], -1).to(dtype)
        peak = (attention @ grid).reshape(b, v, 2)
        embedding = self.view_embedding(view_ids)
        inputs = torch.cat([self.dropout(pooled).reshape(b, v, -1), peak, embedding], -1)
        location_logits = self.heads["locations"](inputs)
        look = {}
        if self.second_look is not None:
            source = images[:, :, 0] if fine is None else fine
            look = self._second_look(maps, source, None if fine is None else fine_theta,
                                     embedding, crop_centres)
            view_logits = view_logits + look.pop("evidence")
            location_logits = location_logits + look.pop("location_logits")
        view_logits = view_logits.masked_fill(~view_mask, _ABSENT)
        # P(aneurysm at l, seen in view v) = P(seen in v) * P(at l | seen in v)
        log_seen = F.logsigmoid(view_logits)
        view_loc = log_seen.unsqueeze(-1) + F.logsigmoid(location_logits)
        keep = view_mask.to(dtype)
        presence = pool_views(view_logits, view_mask)
        locations = noisy_or_logit((log1mexp(view_loc) * keep.unsqueeze(-1)).sum(1))
        arteries = self.heads["arteries"](feats).reshape(b, v, -1, h, w)
        return {"presence": presence, "locations": locations, "view_logits": view_logits,
                "maps": maps, "peaks": peak, "view_locations": view_loc, "arteries": arteries,
                **look}

    def _second_look(self, maps: torch.Tensor, source: torch.Tensor,
                     theta: torch.Tensor | None, embedding: torch.Tensor,
                     extra: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Crops at the map's K strongest peaks (and at ``extra`` centres), their logits, and
        what they add to each view's evidence and location logits."""
        s = self.settings
        b, v, h, w = maps.shape
        radius = max(int(s.crop_field * h / 2), 1)
        centres = peak_centres(maps.detach().reshape(b * v, h, w), s.crops, radius)
        k = centres.shape[1]
        if extra is not None:
            centres = torch.cat([centres, extra.reshape(b * v, -1, 2).to(centres.dtype)], 1)
        crops = sample_crops(source.reshape(b * v, *source.shape[-2:]), centres,
                             None if theta is None else theta.reshape(b * v, 2, 3),
                             s.crop_size, s.crop_field)
        logits, inputs = self.second_look(crops, centres, embedding.reshape(b * v, -1))
        chosen = logits[:, :k]
        weights = torch.softmax(s.pool_sharpness * chosen, -1)
        pooled = torch.einsum("nk,nkd->nd", weights, inputs[:, :k])
        return {"evidence": crop_evidence(chosen, s.pool_sharpness).reshape(b, v),
                "location_logits": self.second_look.locations(pooled).reshape(b, v, -1),
                "crop_logits": logits.reshape(b, v, -1),
                "crop_centres": centres.reshape(b, v, -1, 2), "crop_field": s.crop_field}
