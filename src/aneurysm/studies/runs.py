"""A finished pretraining run read back: its arrays, which are validation, and the model's
outputs on them, for the analyses that take a run apart (diagnose, by size, localisation).

A folder that is not a finished run is one line saying what is missing, never a traceback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AneurysmError
from .spec import StudyError



@dataclass(frozen=True)
class LoadedRun:
    path: Path
    arrays: Any  # StudyArrays of every study of the run (training and validation)
    val: np.ndarray  # (N,) bool: the study is in the validation split
    source: np.ndarray  # (N,) the study's source name
    view_logits: np.ndarray  # (N, V)
    presence: np.ndarray  # (N,) study logits, as the model pools views (no mirroring)
    maps: np.ndarray  # (N, V, h, w) aneurysm map logits
    view_bias: np.ndarray  # (N, V) the model's per-view-type bias
    sharpness: float  # the dense model's smooth-maximum sharpness


def check_run(run: Path) -> None:
    """One line if ``run`` lacks what a finished ``aneurysm pretrain`` run has."""
    from ..workflows.pretrain import pretrained_checkpoint

    for name in ("config.yaml", "splits.json", "records.json", pretrained_checkpoint(run).name):
        if not (run / name).is_file():
            raise StudyError(f"{run}: no {name}; is this a finished `aneurysm pretrain` run?")


def load_run(run: Path) -> LoadedRun:
    """Every study of ``run`` through its own model (the run's config, migrated to today's
    keys); a run that cannot be read raises ``StudyError`` with one line."""
    import torch

    run = Path(run)
    config, val_ids, arrays = _read(run)
    model, device = _model(run, config)
    if not config.model.draws_maps:
        raise StudyError(f"{run}: model {config.model.name!r} draws no aneurysm maps; "
                         "these analyses need the dense model")
    views, studies, maps = [], [], []
    for _, out in _outputs(model, arrays, config, device):
        views.append(out["view_logits"].float().cpu())
        studies.append(out["presence"].float().cpu())
        maps.append(out["maps"].float().cpu())
    bias = model.heads["view_bias"].weight[:, 0].detach().float().cpu()
    return LoadedRun(
        path=run, arrays=arrays, val=np.array([s in val_ids for s in arrays.study_ids]),
        source=np.array([s.split(":")[0] for s in arrays.study_ids]),
        view_logits=torch.cat(views).numpy(), presence=torch.cat(studies).numpy(),
        maps=torch.cat(maps).numpy(), view_bias=bias[torch.as_tensor(arrays.view_ids)].numpy(),
        sharpness=float(config.model.settings.pool_sharpness))


def localisation(run: Path) -> float:
    """Share of validation views with an aneurysm footprint whose map peaks on it (or on the
    ring of unknown cells around it); NaN for a model without maps or without such views."""
    from ..training.losses import on_map_grid

    run = Path(run)
    config, _, arrays = _read(run, validation_only=True)
    if not config.model.draws_maps:
        return math.nan
    model, device = _model(run, config)
    hits: list[bool] = []
    for batch, out in _outputs(model, arrays, config, device):
        target, weight = on_map_grid(batch["map_target"], batch["map_weight"],
                                     out["maps"].shape[-2:])  # stride 8 when unshuffled
        maps, target, weight = out["maps"].flatten(2), target.flatten(2), weight.flatten(2)
        peak = maps.argmax(-1, keepdim=True)
        shown = (target.amax(-1) > 0.5) & batch["view_mask"]
        on = (target.gather(-1, peak) > 0.5) | (weight.gather(-1, peak) == 0)
        hits += on[..., 0][shown].tolist()
    return float(np.mean(hits)) if hits else math.nan


def _read(run: Path, validation_only: bool = False) -> tuple[Any, set[str], Any]:
    """(config, validation study ids, arrays) of a finished run."""
    from ..config import read_run_config
    from ..data.arrays import build_arrays, footprint_stride, image_caches
    from ..schema import load_manifest

    check_run(run)
    try:
        config = read_run_config(run)
        splits = json.loads((run / "splits.json").read_text())
        val_ids = {s for v in splits.values() for s in v["val"]}
        records = load_manifest(run / "records.json")
        if validation_only:
            records = [r for r in records if r.study_id in val_ids]
        cache, fine = image_caches(config.data.cache_dir, config.preprocess,
                               config.model.second_look)
        arrays, _, _ = build_arrays(records, cache, progress=False, fine_cache=fine,
                                    footprint_stride=footprint_stride(config.model.map_stride))
    except AneurysmError as exc:
        raise StudyError(f"{run}: {exc}") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise StudyError(f"{run}: splits.json is not a pretraining's splits ({exc})") from None
    return config, val_ids, arrays


def _model(run: Path, config: Any) -> tuple[Any, Any]:
    from ..model.checkpoint import load_model
    from ..model.predict import resolve_device
    from ..workflows.pretrain import pretrained_checkpoint

    device = resolve_device(config.train.device)
    try:
        return load_model(pretrained_checkpoint(run), config.model, device), device
    except AneurysmError as exc:
        raise StudyError(str(exc)) from None


def _outputs(model: Any, arrays: Any, config: Any, device: Any):
    from ..model.predict import iter_outputs

    return iter_outputs(model, arrays, config.train.predict_options(), device)
