"""A loader batch made ready for the model, and its left-right mirror image.

Training (augmentation), validation and prediction (test-time mirroring) all read batches this
way, so it lives below both.
"""

from __future__ import annotations

import torch

from ..preprocessing import CELL_ANEURYSM, CELL_UNKNOWN
from ..schema import MIRROR_PERMUTATION, VIEW_TYPES, mirror_view_name, view_index

#: For each view id, the id of its mirror image, and whether it is flipped when mirrored.
MIRROR_VIEW = torch.tensor([view_index(mirror_view_name(v.name)) for v in VIEW_TYPES])
FLIP_ON_MIRROR = torch.tensor([v.projection == "frontal" for v in VIEW_TYPES])
_PERM = torch.tensor(MIRROR_PERMUTATION)

#: Per-view keys whose trailing two dimensions are an image: they follow the views and flip.
_SPATIAL = ("images", "footprints", "map_target", "map_weight", "arteries", "fine")
_PER_VIEW = ("view_mask", "view_label")


def prepare_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """uint8 views -> float in [0, 1] (B, V, 1, S, S), fine views (B, V, F, F); footprint cells -> a target, a weight
    (1 where known) and a per-view label (1 aneurysm seen, 0 none, -1 unknown)."""
    out = dict(batch)
    if "images" in out and out["images"].dtype == torch.uint8:
        out["images"] = out["images"].float().div_(255.0).unsqueeze(2)
    if "fine" in out and out["fine"].dtype == torch.uint8:  # (B, V, F, F): the second look's
        out["fine"] = out["fine"].float().div_(255.0)
    if "footprints" in out:
        cells = out.pop("footprints")
        target = (cells == CELL_ANEURYSM).float()
        weight = (cells != CELL_UNKNOWN).float()
        seen = target.flatten(2).amax(-1) > 0
        clean = weight.flatten(2).amin(-1) > 0
        out["map_target"], out["map_weight"] = target, weight
        out["view_label"] = torch.where(seen, 1.0, torch.where(clean, 0.0, -1.0))
    return out


def _take(x: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """x[b, slots[b, j]] for every (b, j)."""
    index = slots.reshape(*slots.shape, *([1] * (x.dim() - 2))).expand(*slots.shape, *x.shape[2:])
    return torch.gather(x, 1, index)


def mirror_study(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Left-right swap of a batch (leading batch dimension) or of one study (none)."""
    batched = batch["view_ids"].dim() == 2
    s = batch if batched else {k: v.unsqueeze(0) for k, v in batch.items()}
    ids = s["view_ids"]
    mirror_ids = MIRROR_VIEW.to(ids.device)[ids]
    match = ids.unsqueeze(1) == mirror_ids.unsqueeze(2)  # (B, slot j, slot k): k holds j's mirror
    own = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    slots = torch.where(match.any(-1), match.float().argmax(-1), own)
    flip = FLIP_ON_MIRROR.to(ids.device)[ids]
    out = dict(s)
    for key in _SPATIAL:
        if key in s:
            moved = _take(s[key], slots)
            mask = flip.reshape(*flip.shape, *([1] * (moved.dim() - 2)))
            out[key] = torch.where(mask, moved.flip(-1), moved)  # no sync, unlike moved[flip]
    for key in _PER_VIEW:
        if key in s:
            out[key] = _take(s[key], slots)
    perm = _PERM.to(ids.device)
    for key in ("locations", "location_known"):
        if key in s:
            out[key] = s[key][:, perm]
    if "group_members" in s and s["group_members"].numel():
        out["group_members"] = s["group_members"][..., perm]
    return out if batched else {k: v.squeeze(0) for k, v in out.items()}


def mirror_location_scores(scores: torch.Tensor) -> torch.Tensor:
    """Map location outputs of a mirrored study back to the original sides."""
    return scores[..., _PERM.to(scores.device)]
