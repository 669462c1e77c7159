"""Masked multi-task loss: unknown labels contribute nothing; group labels train a noisy-OR; where a
source says where the aneurysm is, the dense map is supervised per cell and each view's pooled
evidence per view."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..preprocessing import ARTERY_UNKNOWN
from .config import LossWeights
from .crops import crop_targets


@functools.lru_cache(maxsize=None)
def _focal(gamma: float):
    """One MONAI focal loss per exponent, built once rather than on every step (and MONAI
    imported then, not when a config is read)."""
    from monai.losses import FocalLoss

    return FocalLoss(gamma=gamma, reduction="none", use_softmax=False)


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    known = known.to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return (loss * known).sum() / known.sum().clamp_min(1.0)


def noisy_or_loss(location_logits: torch.Tensor, members: torch.Tensor, targets: torch.Tensor,
                  valid: torch.Tensor) -> torch.Tensor:
    """BCE on P(at least one member positive) = 1 - prod(1 - p_m).

    members (B, G, L) 0/1, targets (B, G), valid (B, G). Computed in log space for stability.
    """
    if members.numel() == 0:  # no groups at all (a shape, not a value: no device sync)
        return location_logits.sum() * 0.0
    log_not = F.logsigmoid(-location_logits).unsqueeze(1)  # log(1 - p), (B, 1, L)
    log_none = (log_not * members.to(log_not.dtype)).sum(-1)  # log P(no member), (B, G)
    log_any = torch.log1p(-torch.exp(log_none).clamp(max=1 - 1e-6))
    t = targets.to(log_none.dtype)
    loss = -(t * log_any + (1 - t) * log_none)
    v = valid.to(loss.dtype)
    return (loss * v).sum() / v.sum().clamp_min(1.0)


def on_map_grid(target: torch.Tensor, weight: torch.Tensor, grid: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Footprint cells (target, weight) on a coarser map grid: a cell is aneurysm if any of its
    cells is, and known only if all of its cells are."""
    if target.shape[-2:] == tuple(grid):
        return target, weight
    return F.adaptive_max_pool2d(target, grid), -F.adaptive_max_pool2d(-weight, grid)


def map_loss(maps: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
             view_mask: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss per known cell of present views, normalised by the aneurysm cells (as
    CenterNet does): a batch's few lesion cells are not drowned by its thousands of empty ones."""
    target, weight = on_map_grid(target, weight, maps.shape[-2:])
    w = weight * view_mask[..., None, None].to(weight.dtype)
    per_cell = _focal(gamma)(maps.float(), target.float())
    divisor = (target * w).sum().clamp_min(1.0)
    return (per_cell * w).sum() / divisor


def artery_loss(logits: torch.Tensor, target: torch.Tensor, view_mask: torch.Tensor,
                unknown: int) -> torch.Tensor:
    """Cross-entropy per cell of present views where the source labels its arteries."""
    b, v, k, h, w = logits.shape
    target = target.long()
    if target.shape[-2:] != (h, w):
        target = F.interpolate(target.float(), size=(h, w), mode="nearest").long()
    target = torch.where(view_mask[..., None, None], target, unknown)
    # summed, then divided by the known cells: zero, not NaN, where no cell is known, with no
    # device sync to ask first
    total = F.cross_entropy(logits.reshape(b * v, k, h, w).float(), target.reshape(b * v, h, w),
                            ignore_index=unknown, reduction="sum")
    return total / (target != unknown).sum().clamp_min(1)


def footprint_points(target: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """(seen, u, v) per view from footprint cells: the centroid of the aneurysm cells, in [0, 1]
    image coordinates; the global model's auxiliary target."""
    h, w = target.shape[-2:]
    mass = target.flatten(-2).sum(-1).clamp_min(1e-6)
    ys, xs = torch.meshgrid(torch.arange(h, device=target.device),
                            torch.arange(w, device=target.device), indexing="ij")
    u = (target * ((xs + 0.5) / w)).flatten(-2).sum(-1) / mass
    v = (target * ((ys + 0.5) / h)).flatten(-2).sum(-1) / mass
    return torch.stack([(label > 0).to(target.dtype), u, v], -1)


def point_loss(points: torch.Tensor, targets: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Per view: BCE on "the aneurysm is in this view", L1 on its (u, v) where it is."""
    visible = masked_bce(points[..., 0], targets[..., 0], known)
    where = (known & (targets[..., 0] > 0)).unsqueeze(-1).to(points.dtype)
    l1 = (torch.sigmoid(points[..., 1:]) - targets[..., 1:]).abs() * where
    return visible + l1.sum() / (2 * where.sum()).clamp_min(1.0)


def multitask_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                   weights: LossWeights = LossWeights()) -> torch.Tensor:
    loss = weights.presence * masked_bce(out["presence"], batch["presence"],
                                         batch["presence_known"])
    loss = loss + weights.locations * masked_bce(out["locations"], batch["locations"],
                                                 batch["location_known"])
    if "group_members" in batch:
        loss = loss + weights.groups * noisy_or_loss(out["locations"], batch["group_members"],
                                                     batch["group_targets"],
                                                     batch["group_valid"])
    if "crop_logits" in out and weights.crops > 0:
        labels, known = crop_targets(out["crop_centres"], float(out["crop_field"]), batch)
        loss = loss + weights.crops * masked_bce(out["crop_logits"], labels, known)
    if "view_label" not in batch:
        return loss
    label, mask = batch["view_label"], batch["view_mask"]
    known = (label >= 0) & mask
    if "maps" in out:
        if weights.maps > 0:
            loss = loss + weights.maps * map_loss(out["maps"], batch["map_target"],
                                                  batch["map_weight"], mask,
                                                  weights.map_gamma)
        if weights.views > 0:
            loss = loss + weights.views * masked_bce(out["view_logits"], label.clamp_min(0),
                                                     known)
    if "arteries" in out and weights.arteries > 0 and "arteries" in batch:
        loss = loss + weights.arteries * artery_loss(out["arteries"], batch["arteries"], mask,
                                                     ARTERY_UNKNOWN)
    if "points" in out and weights.points > 0:
        targets = footprint_points(batch["map_target"], label)
        loss = loss + weights.points * point_loss(out["points"], targets, known)
    return loss
