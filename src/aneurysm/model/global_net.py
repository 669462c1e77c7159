"""The global multi-view model (``model.name: global``): a shared backbone pools each view into one
feature, and masked attention pools the views. Kept for comparison with the dense model.

One model does presence and location together: the teams that trained two models, or stitched
the views into one mosaic, did worse.
"""

from __future__ import annotations

import torch
from torch import nn

from ..schema import NUM_LOCATIONS, VIEW_TYPES
from .backbone import create_backbone
from .config import ModelConfig
from .present_views import on_present_views
from .strided_pointwise import subsample_pointwise


class MaskedAttentionPool(nn.Module):
    """Gated attention pooling (MIL) over views; absent views get zero weight."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.v = nn.Linear(dim, dim)
        self.u = nn.Linear(dim, dim)
        self.w = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.w(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h))).squeeze(-1)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        weights = torch.nan_to_num(weights, nan=0.0)  # a study with no view at all
        return torch.einsum("bv,bvd->bd", weights, h), weights


class GlobalMultiViewNet(nn.Module):
    def __init__(self, backbone: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        subsample_pointwise(backbone)  # channels-last strided 1x1 gradients (strided_pointwise)
        self.backbone = backbone.to(memory_format=torch.channels_last)  # faster on CPU and GPU
        self.project = nn.Linear(backbone.num_features, config.embed_dim)
        self.view_embedding = nn.Embedding(len(VIEW_TYPES), config.embed_dim)
        self.pool = MaskedAttentionPool(config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({
            "presence": nn.Linear(config.embed_dim, 1),
            "locations": nn.Linear(config.embed_dim, NUM_LOCATIONS),
            # per view: (aneurysm visible logit, u, v): the auxiliary localisation target
            "points": nn.Linear(config.embed_dim, 3),
        })

    def _embed(self, views: torch.Tensor) -> tuple[torch.Tensor]:
        """(N, 1, S, S) views -> (N, embed_dim) features."""
        return (self.project(self.backbone(views.contiguous(memory_format=torch.channels_last))),)

    def forward(self, images: torch.Tensor, view_ids: torch.Tensor,
                view_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """images (B, V, 1, S, S) float, view_ids (B, V) long, view_mask (B, V) bool."""
        b, v = images.shape[:2]
        present = view_mask.reshape(-1)
        flat = images.reshape(b * v, *images.shape[2:])
        feats = torch.zeros(b * v, self.project.out_features, device=images.device,
                            dtype=self.project.weight.dtype)
        (feats,) = on_present_views(self._embed, flat, present, (feats,))
        h = torch.relu(feats.reshape(b, v, -1) + self.view_embedding(view_ids))
        pooled, attention = self.pool(h, view_mask)
        pooled = self.dropout(pooled)
        return {
            "presence": self.heads["presence"](pooled).squeeze(-1),
            "locations": self.heads["locations"](pooled),
            "attention": attention,
            "points": self.heads["points"](h),
        }


def build_global(config: ModelConfig) -> GlobalMultiViewNet:
    """The registry's builder: the timm backbone ``model.global.backbone`` names, from a local
    file if ``backbone_weights`` gives one."""
    settings = config.settings
    return GlobalMultiViewNet(create_backbone(settings.backbone, settings.backbone_weights or None),
                              config)
