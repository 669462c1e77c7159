"""Does the second look see the aneurysm? For a fine-tuning run with a second look, on the
held-out patients of synthetic K-ium (whose ``aneurysm_positions.csv`` says where each sac lies
in each view), with the first fold's model:

- per view showing a sac, by the patient's largest aneurysm: how often one of the K crops the
  map chose covers it (its centre within half a crop), the crop's probability there, and the
  best of the view's other crops;
- per patient: the AUROC of the crops alone (the highest crop probability over views), of the
  map alone (its highest cell) and of the view evidence (noisy-OR of the views), each bin's
  positives against every negative.

A second look that works scores the crop on the sac above the others, and its crops alone rank
patients well. ``pretrained`` reads the run's starting point instead (what pretraining taught).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import read_run_config
from ..data.arrays import build_arrays, image_caches
from ..errors import AneurysmError
from ..inference.maps import predict_maps
from ..metrics import SIZE_BINS, safe_auroc
from ..model.checkpoint import checkpoint_path, load_model
from ..model.predict import resolve_device
from ..registry import get_adapter
from ..schema.sizes import largest_radius
from .crop_sheet import draw_crop_sheet
from .sac_views import covers, frame_sizes, views_with_sacs
from .tables import mean_sd

POSITIONS = "aneurysm_positions.csv"
SCORES = ("crops alone", "map alone", "view evidence")


def kium_root_of(run: Path) -> Path:
    """The synthetic K-ium a study fine-tuned ``run`` on: ``seed_N/data/kium`` beside it."""
    return run.resolve().parent.parent / "data" / "kium"


def crop_hits(run: str | Path, kium_root: str | Path | None = None,
              pretrained: bool = False, sheet: str | Path | None = None) -> dict:
    """The figures for one run; ``sheet``: also draw its crops on sacs there
    (``crop_sheet``)."""
    run = Path(run)
    root = Path(kium_root) if kium_root else kium_root_of(run)
    if not (root / POSITIONS).is_file():
        raise AneurysmError(f"{root}: no {POSITIONS}; crop hits need synthetic K-ium "
                            "(aneurysm synth kium) whose truth says where each sac is")
    config = read_run_config(run)
    if not config.model.second_look:
        raise AneurysmError(f"{run}: this run has no second look (model.dense.crops: 0)")
    folds = sorted(run.glob("fold_*"))
    if not folds or not checkpoint_path(folds[0], "best").is_file():
        raise AneurysmError(f"{run}: no fold_0/best.safetensors; is this a finished "
                            "`aneurysm finetune` run?")
    path = checkpoint_path(folds[0], "best")
    if pretrained:
        init = json.loads((run / "meta.json").read_text()).get("init")
        if not init:
            raise AneurysmError(f"{run}: fine-tuned from scratch; --pretrained needs a run "
                                "fine-tuned with --init")
        path = Path(init)
    device = resolve_device(config.train.device)
    records = get_adapter("kium").load(root, "test")
    cache, fine = image_caches(config.data.cache_dir, config.preprocess, True)
    arrays, _, _ = build_arrays(records, cache, skip_bad=True, progress=False, fine_cache=fine)
    model = load_model(path, config.model, device)
    maps = predict_maps([model], arrays, config.train.predict_options(), device)
    ids = [int(s) for s in arrays.study_ids]
    radius = largest_radius(root / "aneurysm_sizes.csv", ids)
    positions = pd.read_csv(root / POSITIONS)
    positions = positions[positions["set"] == "test_set"]
    sizes = frame_sizes(arrays, positions, root, ids)
    views = _views(arrays, maps, positions, sizes, ids, radius)
    if sheet:
        draw_crop_sheet(arrays, maps, positions, sizes, ids, sheet)
    present = arrays.view_mask
    scores = {
        "crops alone": np.where(present, maps.crops[..., 2].max(-1), 0).max(1),
        "map alone": np.where(present, maps.maps.reshape(*present.shape, -1).max(-1), 0).max(1),
        "view evidence": 1 - np.prod(np.where(present, 1 - maps.seen, 1), 1)}
    labels = pd.read_csv(root / "groundtruth.csv").set_index("Index")["Aneurysm"]
    truth = labels.reindex(ids).to_numpy(dtype=float)
    auroc = {}
    for label, low, high in [*SIZE_BINS, ("all sizes", 0.0, np.inf)]:
        keep = (truth == 0) | ((truth == 1) & (radius >= low) & (radius < high))
        auroc[label] = {name: safe_auroc(truth[keep], s[keep]) for name, s in scores.items()}
    return {"run": str(run), "checkpoint": str(path), "views": views, "auroc": auroc}


def _views(arrays, maps, positions: pd.DataFrame, sizes: dict, ids: list[int],
           radius: np.ndarray) -> dict[str, dict[str, float]]:
    """Per size bin: views with a sac, the share a crop covers, the crop's probability on the
    sac (median) and the view's best other crop (median)."""
    rows = []
    for i, j, sacs in views_with_sacs(arrays, positions, sizes, ids):
        crops = maps.crops[i, j]
        for sac in sacs:
            hit = covers(crops, sac, maps.crop_field)
            rows.append((radius[i], hit.any(), crops[hit, 2].max() if hit.any() else np.nan,
                         crops[~hit, 2].max() if (~hit).any() else np.nan))
    table = pd.DataFrame(rows, columns=["radius", "hit", "on", "other"])
    out = {}
    for label, low, high in SIZE_BINS:
        b = table[(table.radius >= low) & (table.radius < high)]
        out[label] = {"views": float(len(b)), "covered": float(b.hit.mean()) if len(b) else np.nan,
                      "p on the sac": float(b.on.median()) if b.hit.any() else np.nan,
                      "p best other": float(b.other.median()) if len(b) else np.nan}
    return out


def report(results: list[dict]) -> str:
    """Mean ± sd over runs (seeds): the views table and the AUROC table, by size."""
    labels = [label for label, *_ in SIZE_BINS]
    cols = ["views", "covered", "p on the sac", "p best other"]
    lines = [f"Crop hits over {len(results)} run(s), first fold's model, held-out patients.", "",
             "| largest aneurysm | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label in labels:
        cells = [mean_sd([r["views"][label][c] for r in results], 1 if c == "views" else 3)
                 for c in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Patient AUROC, each bin's positives against every negative:", "",
              "| largest aneurysm | " + " | ".join(SCORES) + " |", "|---" * 4 + "|"]
    for label in [*labels, "all sizes"]:
        cells = [mean_sd([r["auroc"][label][s] for r in results]) for s in SCORES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
