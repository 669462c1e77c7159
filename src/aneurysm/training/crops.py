"""The second look's training crops: where they go, and what each one shows.

Beside the K crops where the map responds, each training view gets one crop at its known
footprint (a random cell of it, shifted by up to a quarter of the crop) or, where none is known,
at a vessel point, and more vessel points: dark pixels drawn in proportion to how dark they are,
so bifurcations, crossings and loops are what the patch network learns to tell apart. A crop's
label is known where the source says what its centre holds (footprints, or a study without an
aneurysm: then every crop is a negative, the map's strongest responses the hardest ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: darkness to this power is the chance of a vessel point: DSA's field is light, vessels dark
_VESSEL_POWER = 8.0


def training_centres(batch: dict[str, torch.Tensor], per_view: int,
                     generator: torch.Generator) -> torch.Tensor:
    """(B, V, per_view, 2) crop centres (x, y) in [0, 1] of the (augmented) views."""
    images = batch["images"]
    b, v = images.shape[:2]
    grid = batch["map_target"].shape[-2:] if "map_target" in batch else (
        images.shape[-2] // 4, images.shape[-1] // 4)
    h, w = grid
    dark = F.adaptive_avg_pool2d(1 - images.reshape(b * v, 1, *images.shape[-2:]).float(), grid)
    vessel = dark.flatten(1).clamp_min(0).pow(_VESSEL_POWER) + 1e-12
    cells = torch.multinomial(vessel, per_view, replacement=True, generator=generator)
    if "map_target" in batch:  # the first crop of a view with a known aneurysm goes to it
        target = batch["map_target"].reshape(b * v, -1)
        seen = (batch["view_label"].reshape(-1) > 0) & (target.amax(-1) > 0.5)
        lesion = torch.multinomial(target + 1e-12, 1, generator=generator)[:, 0]
        cells[:, 0] = torch.where(seen, lesion, cells[:, 0])
    jitter = torch.rand((b * v, per_view, 2), generator=generator, device=images.device) - 0.5
    xs = ((cells % w).float() + 0.5 + jitter[..., 0]) / w
    ys = ((cells // w).float() + 0.5 + jitter[..., 1]) / h
    return torch.stack([xs, ys], -1).clamp(0, 1).reshape(b, v, per_view, 2)


def crop_targets(centres: torch.Tensor, field: float, batch: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per crop (B, V, J): 1 where an aneurysm cell lies in the crop's central half, and
    whether that is known: a lesion cell is there, or every cell there is known (footprints mark
    a margin around a lesion unknown), or the study has no aneurysm.
    A crop with an aneurysm only in its outer ring is left unknown: neither answer is right."""
    b, v, j = centres.shape[:3]
    negative = batch["presence_known"] & (batch["presence"] < 0.5)  # (B,)
    known = negative[:, None, None].expand(b, v, j)
    label = torch.zeros((b, v, j), dtype=torch.bool, device=centres.device)
    if "map_target" in batch:
        target, weight = batch["map_target"], batch["map_weight"]
        h, w = target.shape[-2:]
        xs = (torch.arange(w, device=centres.device, dtype=centres.dtype) + 0.5) / w
        ys = (torch.arange(h, device=centres.device, dtype=centres.dtype) + 0.5) / h
        dx = (xs[None, None, None, None, :] - centres[..., 0, None, None]).abs()  # (B,V,J,1,w)
        dy = (ys[None, None, None, :, None] - centres[..., 1, None, None]).abs()  # (B,V,J,h,1)
        half = max(field / 4, 0.75 / min(h, w))
        core = ((dx < half) & (dy < half)).flatten(-2)  # (B, V, J, h w)
        crop = ((dx < 2 * half) & (dy < 2 * half)).flatten(-2)
        lesion = target.flatten(-2)[:, :, None] > 0.5
        cells_known = weight.flatten(-2)[:, :, None] > 0.5
        label = (core & lesion).any(-1)
        ambiguous = (crop & lesion).any(-1) & ~label
        clean = (~core | cells_known).all(-1) & core.any(-1)  # a negative needs every cell
        known = known | label | (clean & ~ambiguous)
        label = label & ~negative[:, None, None]
    return label.to(centres.dtype), known & batch["view_mask"][..., None]
