"""Augmentation of whole batches on the training device: one random affine warp, contrast and noise
per view, and an anatomy-aware left-right swap per study.

The second look's fine views are not resampled: they get the same contrast, and their view's
warp travels with the batch (``fine_theta``), so each crop is sampled once, straight from the
native-resolution view, exactly where the warped view shows it.

Per-view transforms in the data loader cost a third of a CPU training step and would starve a GPU
at 512 px; here one ``affine_grid``/``grid_sample`` call warps every view of the batch, and the
aneurysm footprints go through the same warp, so targets move with their images.

The swap mirrors the frontal (A) views, exchanges the left and right injections, and exchanges
the L_ and R_ labels, so the model sees a plausible mirrored patient rather than an impossible one.
Lateral (B) views are not flipped: a parallel projection along the left-right axis looks the
same from either side's injection geometry.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ..data.batches import mirror_study, prepare_batch
from ..preprocessing import ARTERY_UNKNOWN
from .config import AugmentConfig
from .domain import blur_and_residue, render_tables


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g, device=g.device)


def random_affines(n: int, config: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) ``affine_grid`` matrices in normalised coordinates; identity where not drawn."""
    angle = _uniform(n, -1.0, 1.0, g) * math.radians(config.rotate_deg)
    scale = 1.0 + _uniform(n, -config.scale, config.scale, g)
    shift = _uniform(2 * n, -2 * config.translate, 2 * config.translate, g).reshape(n, 2)
    drawn = torch.rand(n, generator=g, device=g.device) < config.affine_prob
    angle, scale = angle * drawn, torch.where(drawn, scale, 1.0)
    shift = shift * drawn[:, None]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                        torch.stack([sin, cos, shift[:, 1]], 1)], 1)


@functools.lru_cache(maxsize=8)
def _axes(h: int, w: int, device: torch.device, dtype: torch.dtype
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres along y and x in normalised coordinates, as ``affine_grid`` places them."""
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=device, dtype=dtype)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=device, dtype=dtype)
    return ys, xs


def affine_grid(theta: torch.Tensor, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
    """``F.affine_grid(theta, (n, 1, h, w), align_corners=False)``, built separably:
    x' = a x + b y + c is a row term plus a column term, so no (h w x 3) product is formed
    (4x faster on the CPU than the batched matrix product, and than affine_grid itself)."""
    ys, xs = _axes(h, w, theta.device, dtype)
    t = theta.to(dtype)
    grid = torch.empty((t.shape[0], h, w, 2), device=t.device, dtype=dtype)
    for k in range(2):  # output x (k = 0) and y (k = 1)
        rows = t[:, k, 1, None] * ys + t[:, k, 2, None]  # (n, h)
        torch.add(rows[:, :, None], t[:, k, 0, None, None] * xs, out=grid[..., k])
    return grid


def _warp(x: torch.Tensor, theta: torch.Tensor, padding: str, mode: str = "bilinear"
          ) -> torch.Tensor:
    """Warp (N, H, W) or (N, 1, H, W) maps by ``theta``; normalised coordinates make one matrix
    serve every resolution, so a footprint moves exactly with its image."""
    x4 = x.unsqueeze(1) if x.dim() == 3 else x
    grid = affine_grid(theta, *x4.shape[-2:], x4.dtype)
    y = F.grid_sample(x4, grid, mode=mode, padding_mode=padding, align_corners=False)
    return y.reshape(x.shape)


#: distinct unit-variance noise fields drawn once per size and device; each noisy view takes
#: one at random with a random sign. Drawing fresh Gaussian noise for every view cost more
#: than the warp itself on the CPU.
NOISE_BANK = 512


@functools.lru_cache(maxsize=4)
def _noise_bank(pixels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator(device=device).manual_seed(0x5EED)  # fixed: resumed runs draw alike
    return torch.randn((NOISE_BANK, pixels), generator=g, device=device, dtype=dtype)


def _contrast_tables(images: torch.Tensor, config: AugmentConfig,
                     g: torch.Generator) -> torch.Tensor:
    """(N, 256) lookup tables: uint8 -> float in [0, 1], with MONAI RandAdjustContrast's gamma
    on each drawn view's own intensity range (identity for the others). One gather then does the
    conversion and the contrast change together."""
    n = images.shape[0]
    gamma = _uniform(n, config.contrast_gamma_low, config.contrast_gamma_high, g)
    drawn = torch.rand(n, generator=g, device=g.device) < config.contrast_prob
    gamma = torch.where(drawn, gamma, 1.0)
    low, high = torch.aminmax(images.flatten(1), dim=1)
    low, high = low.float()[:, None] / 255.0, high.float()[:, None] / 255.0
    span = (high - low).clamp_min(1e-6)
    levels = torch.arange(256, device=images.device, dtype=torch.float32)[None] / 255.0
    return ((levels - low) / span).clamp(0.0, 1.0).pow(gamma[:, None]) * span + low


def augment_batch(batch: dict[str, torch.Tensor], config: AugmentConfig,
                  generator: torch.Generator, projected: torch.Tensor | None = None,
                  sync_free: bool | None = None) -> dict[str, torch.Tensor]:
    """Augment a loader batch (uint8 views, footprint cells) on its own device and prepare it as
    ``prepare_batch`` does; ``generator`` lives on that device too.

    ``projected``: the batch's per-study "projected" flags on the host, if the caller still has
    them, so finding the views to re-render asks nothing of the device. ``sync_free`` (default:
    on a GPU) draws the swap and the noise for every study and view and keeps the drawn ones,
    instead of picking them out: more arithmetic, but no wait for the device to say how many
    were drawn. With every probability 0 or 1 both give the same batch; otherwise the draws
    differ, so a run repeats on one kind of device.
    """
    g = generator
    out = dict(batch)
    if out["images"].dtype != torch.uint8:
        raise TypeError("augment_batch takes the loader's uint8 views, before prepare_batch")
    sync_free = out["images"].is_cuda if sync_free is None else sync_free
    b, v, size = out["images"].shape[:3]
    if config.lr_swap:  # on uint8 data: a quarter of the memory traffic of floats
        drawn = torch.rand(b, generator=g, device=g.device) < config.lr_swap_prob
        if sync_free:
            mirrored = mirror_study(out)
            out = {k: torch.where(drawn.reshape(-1, *[1] * (t.dim() - 1)), mirrored[k], t)
                   for k, t in out.items()}
        elif len(swap := drawn.nonzero()[:, 0]):  # mirror the drawn studies only, in place
            mirrored = mirror_study({k: t[swap] for k, t in out.items()})
            for key, value in mirrored.items():
                out[key] = out[key].index_copy(0, swap, value)
    n = b * v
    pixels = out.pop("images").reshape(n, -1)
    tables = _contrast_tables(pixels, config, g)
    rendered = torch.zeros(0, dtype=torch.long, device=pixels.device)
    if config.projections.enabled and "projected" in out:  # re-render projected views
        flags = out["projected"] if projected is None else projected
        rendered = flags.repeat_interleave(v).nonzero()[:, 0].to(pixels.device)
        if len(rendered):
            tables[rendered] = render_tables(pixels[rendered], config.projections, g)
    fine = out.pop("fine", None)
    out = prepare_batch(out)
    images = torch.gather(tables, 1, pixels.long()).reshape(n, 1, size, -1)
    if len(rendered):
        images[rendered] = blur_and_residue(images[rendered], config.projections, g)
    theta = random_affines(n, config, g)
    images = _warp(images, theta, "border")
    if fine is not None:  # the same contrast; the warp goes into the crops' sampling grid
        out["fine"] = torch.gather(tables, 1, fine.reshape(n, -1).long()).reshape(fine.shape)
        out["fine_theta"] = theta.reshape(b, v, 2, 3)
    if "arteries" in out:  # classes move by nearest neighbour; out of the frame is unknown
        grid = out["arteries"].shape[-2:]
        shifted = out["arteries"].reshape(n, 1, *grid).float() + 1
        moved = _warp(shifted, theta, "zeros", mode="nearest")[:, 0]
        out["arteries"] = torch.where(moved < 0.5, float(ARTERY_UNKNOWN),
                                      moved - 1).reshape(b, v, *grid).to(torch.uint8)
    if "map_target" in out:
        grid = out["map_target"].shape[-2:]
        maps = torch.stack([out["map_target"], out["map_weight"]], 2).reshape(n, 2, *grid)
        target = _warp(maps[:, :1], theta, "zeros")[:, 0]
        weight = _warp(maps[:, 1:], theta, "border")[:, 0]
        label = out["view_label"].reshape(n)
        lost = (label > 0) & (target.flatten(1).amax(-1) < 0.5)  # warped out of the frame
        out["view_label"] = torch.where(lost, -1.0, label).reshape(b, v)
        out["map_target"] = target.reshape(b, v, *grid)
        out["map_weight"] = weight.reshape(b, v, *grid)
    flat = images.flatten(1)
    drawn = torch.rand(n, generator=g, device=g.device) < config.noise_prob
    if sync_free:
        flat += _noise(n, config.noise_std, flat, g) * drawn[:, None].to(flat.dtype)
    elif len(pick := drawn.nonzero()[:, 0]):
        flat[pick] += _noise(len(pick), config.noise_std, flat, g)
    out["images"] = flat.clamp_(0.0, 1.0).reshape(b, v, 1, size, -1)
    return out


def _noise(k: int, std: float, like: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """k noise fields shaped like ``like``'s rows: bank fields with a random sign, times std."""
    bank = _noise_bank(like.shape[1], like.device, like.dtype)
    which = torch.randint(NOISE_BANK, (k,), generator=g, device=g.device)
    sign = torch.rand(k, generator=g, device=g.device) < 0.5
    return bank[which] * torch.where(sign, std, -std).to(like.dtype)[:, None]
