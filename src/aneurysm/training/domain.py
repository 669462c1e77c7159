"""Domain randomisation of projected views, at load time, on the 2-D image.

A cached projection is rendered once, at fixed settings: ``I = background * exp(-mu * L)``.
Re-rendering it per epoch with other settings would defeat the cache, but most of a C-arm's
variation is a function of the cached image itself:
- another attenuation mu' is ``I' = I0 * (I / I0) ** (mu' / mu)`` (a power law on the image
  relative to its background I0), and another background level rescales it;
- blur, a smooth subtraction residue and noise are 2-D operations.
So each projected view gets its own draw of these per batch, and the model learns aneurysms
rather than one renderer. Magnification and in-plane angle come from the affine augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import DomainConfig


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g, device=g.device)


def render_tables(pixels: torch.Tensor, config: DomainConfig, g: torch.Generator
                  ) -> torch.Tensor:
    """(N, 256) lookup tables re-rendering N uint8 projected views: each view's background is
    its median grey level; mu and the background level are drawn per view."""
    n = pixels.shape[0]
    # the background fills most of a projected view: the median of every 7th pixel finds it at
    # a seventh of the cost of all of them (a full median was half of the augmentation's time)
    background = pixels[:, ::7].median(dim=1).values.float().clamp_min(1.0)[:, None]  # (N, 1)
    mu = _uniform(n, config.mu_low, config.mu_high, g)[:, None]
    level = _uniform(n, config.background_low, config.background_high, g)[:, None]
    grey = torch.arange(256, device=pixels.device, dtype=torch.float32)[None]
    transmitted = (grey / background).clamp(1e-4, 1.0)
    return (level * transmitted.pow(mu)).clamp(0.0, 1.0)


def blur_and_residue(images: torch.Tensor, config: DomainConfig, g: torch.Generator
                     ) -> torch.Tensor:
    """(N, 1, S, S) float views: a Gaussian blur of random width, plus a smooth random field."""
    n, _, h, w = images.shape
    sigma = _uniform(n, 0.0, config.blur_max, g).clamp_min(1e-3)
    taps = torch.arange(-2, 3, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (taps[None] / sigma[:, None]) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)  # (N, 5)
    x = images.reshape(1, n, h, w)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=n)
    x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), kernel[:, None, :, None], groups=n)
    field = torch.randn((n, 1, 6, 6), generator=g, device=g.device, dtype=images.dtype)
    field = F.interpolate(field, size=(h, w), mode="bilinear", align_corners=False)
    return x.reshape(n, 1, h, w) + config.residue * field
