"""Masked multi-task loss: unknown labels contribute nothing; group labels train a noisy-OR."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    presence: float = 1.0
    locations: float = 1.0
    groups: float = 1.0
    points: float = 0.0  # auxiliary localisation; 0 = off


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    known = known.to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return (loss * known).sum() / known.sum().clamp_min(1.0)


def noisy_or_loss(location_logits: torch.Tensor, members: torch.Tensor, targets: torch.Tensor,
                  valid: torch.Tensor) -> torch.Tensor:
    """BCE on P(at least one member positive) = 1 - prod(1 - p_m).

    members (B, G, L) 0/1, targets (B, G), valid (B, G). Computed in log space for stability.
    """
    if members.numel() == 0 or not bool(valid.any()):
        return location_logits.sum() * 0.0
    log_not = F.logsigmoid(-location_logits).unsqueeze(1)  # log(1 - p), (B, 1, L)
    log_none = (log_not * members.to(log_not.dtype)).sum(-1)  # log P(no member), (B, G)
    log_any = torch.log1p(-torch.exp(log_none).clamp(max=1 - 1e-6))
    t = targets.to(log_none.dtype)
    loss = -(t * log_any + (1 - t) * log_none)
    v = valid.to(loss.dtype)
    return (loss * v).sum() / v.sum().clamp_min(1.0)


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
    if weights.points > 0 and "view_points" in batch:
        loss = loss + weights.points * point_loss(out["points"], batch["view_points"],
                                                  batch["view_points_known"])
    return loss
