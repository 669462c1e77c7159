"""The second look: crops at native resolution where the first stage's map responds, scored by a
patch network.

At 128 px a 2.5-mm aneurysm of a 1024-px frame is two or three pixels: the map can say where to
look, not what is there. Per view, the K strongest local maxima of the map (in training also the
known footprint and a few random vessel points, ``training.crops``) become crops that cover
``crop_field`` of the view's side, sampled at ``crop_size`` pixels from the fine views
(``preprocess.fine_size``), or from the first stage's own views where a study has none (volumes
rendered at the first stage's size). Sampling goes through the view's augmentation warp, so a
crop shows exactly what the warped view shows there, at the source's resolution. A MONAI ResNet
shared by all views scores each crop, knowing the view type and the crop's position; the crops'
smooth maximum adds to the view's evidence, and their features, weighted by their scores, add to
the view's location logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.nets import ResNet
from torch import nn

from ..schema import NUM_LOCATIONS


def peak_centres(maps: torch.Tensor, k: int, radius: int) -> torch.Tensor:
    """(N, h, w) logit maps -> (N, k, 2) centres (x, y) in [0, 1] of the k strongest local
    maxima, each the strongest cell within ``radius`` cells, so two crops rarely show one blob."""
    h, w = maps.shape[-2:]
    pooled = F.max_pool2d(maps[:, None], 2 * radius + 1, stride=1, padding=radius)[:, 0]
    peaks = torch.where(maps >= pooled, maps, maps - 1e4)  # non-maxima rank after every maximum
    index = peaks.flatten(1).topk(min(k, h * w), dim=1).indices
    xs = (index % w).to(maps.dtype) + 0.5
    ys = torch.div(index, w, rounding_mode="floor").to(maps.dtype) + 0.5
    return torch.stack([xs / w, ys / h], -1)


def crop_grid(centres: torch.Tensor, theta: torch.Tensor | None, size: int, field: float
              ) -> torch.Tensor:
    """``grid_sample`` coordinates (N, J * size, size, 2) of J square crops per view.

    ``centres`` (N, J, 2): (x, y) in [0, 1] of the view as the model sees it (after the
    augmentation warp); each crop covers ``field`` of that view's side in ``size`` pixels.
    ``theta`` (N, 2, 3): the warp, as ``affine_grid`` reads it (output -> source), or None for
    none: a crop is then taken where the unwarped source shows the same point.
    """
    n, j = centres.shape[:2]
    step = torch.arange(size, device=centres.device, dtype=centres.dtype)
    offset = ((step + 0.5) / size - 0.5) * 2 * field  # normalised view units, [-1, 1] spans it
    c = centres * 2 - 1  # (N, J, 2) in [-1, 1]
    x = c[..., 0, None, None] + offset[None, None, None, :]  # (N, J, 1, size)
    y = c[..., 1, None, None] + offset[None, None, :, None]  # (N, J, size, 1)
    x, y = torch.broadcast_tensors(x, y)
    if theta is not None:
        t = theta.to(centres.dtype)[:, None, None, None]  # (N, 1, 1, 1, 2, 3)
        x, y = (t[..., 0, 0] * x + t[..., 0, 1] * y + t[..., 0, 2],
                t[..., 1, 0] * x + t[..., 1, 1] * y + t[..., 1, 2])
    return torch.stack([x, y], -1).reshape(n, j * size, size, 2)


def sample_crops(source: torch.Tensor, centres: torch.Tensor, theta: torch.Tensor | None,
                 size: int, field: float) -> torch.Tensor:
    """(N, H, W) views -> (N, J, size, size) crops (bilinear, edges repeated)."""
    grid = crop_grid(centres, theta, size, field)
    crops = F.grid_sample(source[:, None].to(grid.dtype), grid, mode="bilinear",
                          padding_mode="border", align_corners=False)
    return crops.reshape(source.shape[0], centres.shape[1], size, size)  # not len(): traced


class PatchNet(nn.Module):
    """A MONAI ResNet encoder over each crop, and two heads on its pooled features with the view
    type and the crop's position: an aneurysm logit per crop, location logits per crop."""

    def __init__(self, width: int, embed_dim: int) -> None:
        super().__init__()
        planes = [width, 2 * width, 4 * width, 8 * width]
        self.encoder = ResNet("basic", [1, 1, 1, 1], planes, spatial_dims=2,
                              n_input_channels=1, conv1_t_size=3, conv1_t_stride=1,
                              feed_forward=False)
        features = planes[-1] + 2 + embed_dim
        self.score = nn.Sequential(nn.Linear(features, embed_dim), nn.ReLU(inplace=True),
                                   nn.Linear(embed_dim, 1))
        self.locations = nn.Linear(features, NUM_LOCATIONS)
        # at the start the second look says nothing: the first stage's evidence stands alone
        for head in (self.score[-1], self.locations):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, crops: torch.Tensor, centres: torch.Tensor, view_embedding: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """crops (N, J, C, C), centres (N, J, 2), view_embedding (N, E) -> crop logits (N, J)
        and per-crop head inputs (N, J, D)."""
        n, j = crops.shape[:2]
        feats = self.encoder(crops.reshape(n * j, 1, *crops.shape[2:])).reshape(n, j, -1)
        inputs = torch.cat([feats, centres, view_embedding[:, None].expand(n, j, -1)], -1)
        return self.score(inputs)[..., 0], inputs


def crop_evidence(logits: torch.Tensor, sharpness: float) -> torch.Tensor:
    """(..., K) crop logits -> (...) their log-sum-exp smooth maximum; rises with any crop."""
    return (torch.logsumexp(sharpness * logits, -1) - math.log(logits.shape[-1])) / sharpness
