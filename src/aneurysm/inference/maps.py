"""Maps as explanations: per patient, the views with the model's aneurysm map overlaid, each view's
evidence and the location it points at, the second look's crops boxed with their scores, and the
patient's prediction on top."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.arrays import StudyArrays
from ..errors import AneurysmError
from ..io.montage import save_overlay_montage
from ..model.predict import PredictOptions, iter_outputs
from ..schema import LOCATION_NAMES, VIEW_TYPES


@dataclass(frozen=True)
class ViewMaps:
    maps: np.ndarray  # (N, V, h, w) per-cell aneurysm probability, averaged over models
    seen: np.ndarray  # (N, V) probability that the view shows an aneurysm
    where: np.ndarray  # (N, V, 21) P(location | seen in this view)
    #: the second look's crops as the first fold model read them: (N, V, K, 3) of (x, y) in
    #: [0, 1] and the crop's aneurysm probability; None for a model without a second look
    crops: np.ndarray | None = None
    crop_field: float = 0.0  # a crop's side, as a fraction of the view's


def predict_maps(models: list[nn.Module], arrays: StudyArrays, options: PredictOptions,
                 device: torch.device) -> ViewMaps:
    """The fold models' maps, averaged; a model without maps (the global one) is an error."""
    total: list[np.ndarray] | None = None
    crops: list[np.ndarray] = []
    field = 0.0
    for m, model in enumerate(models):
        parts: list[list[np.ndarray]] = [[], [], []]
        for _, out in iter_outputs(model, arrays, options, device):
            if m == 0 and "crop_logits" in out:  # eval mode: only the crops the map chose
                crops.append(torch.cat([out["crop_centres"].float(), torch.sigmoid(
                    out["crop_logits"][..., None].float())], -1).cpu().numpy())
                field = float(out["crop_field"])
            if "maps" not in out:
                raise AneurysmError("this run's model draws no maps (model.name: global); "
                                    "maps need model.name: dense")
            parts[0].append(torch.sigmoid(out["maps"].float()).cpu().numpy())
            parts[1].append(torch.sigmoid(out["view_logits"].float()).cpu().numpy())
            where = out["view_locations"].float() - torch.nn.functional.logsigmoid(
                out["view_logits"].float()).unsqueeze(-1)
            parts[2].append(torch.exp(where).cpu().numpy())
        stacked = [np.concatenate(p) / len(models) for p in parts]
        total = stacked if total is None else [t + s for t, s in zip(total, stacked)]
    if total is None:
        raise AneurysmError("no model to draw maps with")
    return ViewMaps(*total, np.concatenate(crops) if crops else None, field)


def crop_boxes(view_maps: ViewMaps | None, i: int, j: int) -> list[tuple[float, ...]]:
    """The second look's crops of study i, view j, as montage boxes (x, y, side, score)."""
    if view_maps is None or view_maps.crops is None:
        return []
    return [(x, y, view_maps.crop_field, p) for x, y, p in view_maps.crops[i, j]]


def save_map_montages(out_dir: str | Path, arrays: StudyArrays, view_maps: ViewMaps,
                      presence: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray,
                      progress: bool = True) -> list[Path]:
    """One PNG per study. ``probabilities`` (N, 21) are the ensemble's location probabilities,
    ``predicted`` the 0/1 locations written to output.csv (cut for the official accuracy, which
    favours zeros): the title names both."""
    out_dir = Path(out_dir)
    paths = []
    for i in tqdm(range(len(arrays)), desc="maps", unit="patient", disable=not progress):
        images, heats, captions, boxes = [], [], [], []
        for j, vid in enumerate(arrays.view_ids[i]):
            name = VIEW_TYPES[int(vid)].name
            boxes.append(crop_boxes(view_maps, i, j))
            if not arrays.view_mask[i, j]:
                images.append(None)
                heats.append(None)
                captions.append(f"{name}: absent")
                continue
            seen = float(view_maps.seen[i, j])
            images.append(arrays.images[i, j])
            heats.append(view_maps.maps[i, j])
            top = LOCATION_NAMES[int(np.argmax(view_maps.where[i, j]))]
            captions.append(f"{name}: seen {seen:.2f}" + (f", at {top}" if seen >= 0.5 else ""))
        names = [n for n, on in zip(LOCATION_NAMES, predicted[i]) if on >= 0.5]
        top = int(np.argmax(probabilities[i]))
        title = (f"{arrays.study_ids[i]}: P(aneurysm) {presence[i]:.2f}; most likely at "
                 f"{LOCATION_NAMES[top]} ({probabilities[i, top]:.2f}); output.csv locations: "
                 + (", ".join(names) if names else "none"))
        paths.append(save_overlay_montage(images, heats, captions, title,
                                          out_dir / f"{arrays.study_ids[i]}.png", boxes=boxes))
    return paths
