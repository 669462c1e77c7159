"""Augmentation: MONAI affine, intensity and noise transforms per view, and an anatomy-aware
left-right swap per study.

The swap mirrors the frontal (A) views, exchanges the left and right injections, and exchanges
the L_ and R_ labels, so the model sees a plausible mirrored patient rather than an impossible one.
Lateral (B) views are not flipped: a parallel projection along the left-right axis looks the
same from either side's injection geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from monai.transforms import Compose, RandAdjustContrast, RandAffine, RandGaussianNoise

from ..schema import MIRROR_PERMUTATION, VIEW_TYPES, mirror_view_name, view_index


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True
    rotate_deg: float = 10.0
    scale: float = 0.1
    translate: float = 0.05  # fraction of the image size
    contrast_gamma_low: float = 0.8
    contrast_gamma_high: float = 1.25
    noise_std: float = 0.02
    lr_swap: bool = True
    lr_swap_prob: float = 0.5


#: For each view id, the id of its mirror image, and whether it is flipped when mirrored.
MIRROR_VIEW = torch.tensor([view_index(mirror_view_name(v.name)) for v in VIEW_TYPES])
FLIP_ON_MIRROR = torch.tensor([v.projection == "frontal" for v in VIEW_TYPES])
_PERM = torch.tensor(MIRROR_PERMUTATION)


def view_transform(config: AugmentConfig, image_size: int) -> Compose:
    """Geometry first (member 0), then intensity: a point heatmap can share the geometry."""
    shift = config.translate * image_size
    return Compose([
        RandAffine(prob=0.8, rotate_range=np.deg2rad(config.rotate_deg),
                   scale_range=config.scale, translate_range=(shift, shift),
                   padding_mode="border"),
        RandAdjustContrast(prob=0.5, gamma=(config.contrast_gamma_low, config.contrast_gamma_high)),
        RandGaussianNoise(prob=0.5, std=config.noise_std),
    ])


def _mirror_slots(view_ids: list[int]) -> list[int]:
    """For each view slot, the slot whose view is its mirror image (itself if none)."""
    out = []
    for j, vid in enumerate(view_ids):
        want = int(MIRROR_VIEW[vid])
        out.append(view_ids.index(want) if want in view_ids else j)
    return out


def mirror_study(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Left-right swap of one study (unbatched tensors) or a batch (leading batch dimension)."""
    batched = sample["images"].dim() == 5
    s = sample if batched else {k: v.unsqueeze(0) for k, v in sample.items()}
    images, view_ids, mask = s["images"], s["view_ids"], s["view_mask"]
    out = dict(s)
    new_images, new_mask = torch.empty_like(images), torch.zeros_like(mask)
    points = s.get("view_points")
    if points is not None:  # (has, u, v) per view: follow the views, mirror u where flipped
        new_points = torch.zeros_like(points)
        new_known = torch.zeros_like(s["view_points_known"])
    for b in range(images.shape[0]):
        ids = view_ids[b].tolist()
        for j, k in enumerate(_mirror_slots(ids)):
            flip = bool(FLIP_ON_MIRROR[ids[j]])
            new_images[b, j] = torch.flip(images[b, k], dims=[-1]) if flip else images[b, k]
            new_mask[b, j] = mask[b, k]
            if points is not None:
                new_points[b, j] = points[b, k]
                new_known[b, j] = s["view_points_known"][b, k]
                if flip and points[b, k, 0] > 0:
                    new_points[b, j, 1] = 1.0 - points[b, k, 1]
    out["images"], out["view_mask"] = new_images, new_mask
    if points is not None:
        out["view_points"], out["view_points_known"] = new_points, new_known
    for key in ("locations", "location_known"):
        if key in s:
            out[key] = s[key][:, _PERM]
    if "group_members" in s and s["group_members"].numel():
        out["group_members"] = s["group_members"][..., _PERM]
    return out if batched else {k: v.squeeze(0) for k, v in out.items()}


def mirror_location_scores(scores: torch.Tensor) -> torch.Tensor:
    """Map location outputs of a mirrored study back to the original sides."""
    return scores[..., _PERM]
