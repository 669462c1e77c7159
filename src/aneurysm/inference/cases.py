"""Where the model fails, shown: the out-of-fold false negatives and false positives, most
confident first, each as its views with the fold model's aneurysm maps overlaid.

Each case is drawn by the fold model that never saw it in training, so the picture explains the
same prediction the out-of-fold AUROC counts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from ..config import read_run_config
from ..data.arrays import build_arrays, image_caches
from ..errors import AneurysmError
from ..io.montage import save_overlay_montage
from ..model.checkpoint import checkpoint_path, load_model
from ..model.predict import resolve_device
from ..schema import LOCATION_NAMES, VIEW_TYPES, load_manifest
from .maps import crop_boxes, predict_maps


@dataclass(frozen=True)
class ErrorCase:
    kind: str  # "false negative" or "false positive"
    study_id: str
    fold: int
    probability: float
    threshold: float
    true_locations: list[str]
    predicted_locations: list[str]  # the fold model's locations at the run's thresholds
    views: list[str]  # the view names shown, in order ("absent" ones included)
    image: str  # the montage, relative to the run folder
    maps: bool  # whether the model's maps are overlaid


def youden_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The cut on presence that maximises sensitivity + specificity (Youden's J)."""
    fpr, tpr, cuts = roc_curve(y, p)
    return float(np.clip(cuts[int(np.argmax(tpr - fpr))], 0.0, 1.0))


def pick_errors(oof: pd.DataFrame, per_kind: int) -> tuple[pd.DataFrame, float]:
    """The most confident misses and false alarms at the Youden cut."""
    oof = oof[~oof["presence_true"].isna()]
    y, p = oof["presence_true"].to_numpy(int), oof["presence_prob"].to_numpy()
    if len(np.unique(y)) < 2:
        return oof.iloc[:0], float("nan")
    cut = youden_threshold(y, p)
    misses = oof[(y == 1) & (p < cut)].sort_values("presence_prob").head(per_kind)
    alarms = oof[(y == 0) & (p >= cut)].sort_values("presence_prob", ascending=False)
    picked = pd.concat([misses.assign(kind="false negative"),
                        alarms.head(per_kind).assign(kind="false positive")])
    return picked, cut


def render_error_cases(run_dir: str | Path, per_kind: int = 4, tile: int = 112
                       ) -> tuple[list[ErrorCase], str]:
    """Montages under RUN/report_cases/ and their descriptions; the note says what was left out
    and why (e.g. images no longer on disk), or is empty."""
    run_dir = Path(run_dir)
    oof = pd.read_csv(run_dir / "oof.csv", dtype={"study_id": str, "patient_id": str})
    picked, cut = pick_errors(oof, per_kind)
    if picked.empty:
        return [], "no out-of-fold errors at the Youden cut (or one class only)"
    config = read_run_config(run_dir)
    records = {r.study_id: r for r in load_manifest(run_dir / "records.json")}
    wanted = [records[s] for s in picked["study_id"] if s in records]
    cache, fine = image_caches(config.data.cache_dir, config.preprocess,
                               config.model.second_look)
    arrays, skipped, dropped = build_arrays(wanted, cache, skip_bad=True, progress=False,
                                            fine_cache=fine)
    if not len(arrays):
        return [], "the cases' images are no longer readable, so none is shown"
    index = {s: i for i, s in enumerate(arrays.study_ids)}
    cuts = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
    cut_vector = np.array([cuts[n] for n in LOCATION_NAMES])
    device = resolve_device(config.train.device)
    out_dir = run_dir / "report_cases"
    cases = []
    for fold, group in picked.groupby("fold", sort=True):
        rows = [r for _, r in group.iterrows() if r["study_id"] in index]
        if not rows:
            continue
        sub = arrays.subset([index[r["study_id"]] for r in rows])
        ckpt = checkpoint_path(run_dir / f"fold_{int(fold)}", "best")
        if not ckpt.is_file():
            raise AneurysmError(f"{ckpt}: missing; the run's fold {fold} is incomplete")
        model = load_model(ckpt, config.model, device)
        view_maps = predict_maps([model], sub, config.train.predict_options(), device) \
            if config.model.draws_maps else None
        for i, row in enumerate(rows):
            cases.append(_draw(row, i, sub, view_maps, cut, cut_vector, out_dir, run_dir, tile))
    order = {"false negative": 0, "false positive": 1}
    cases.sort(key=lambda c: (order[c.kind], c.probability if c.kind == "false negative"
                              else -c.probability))
    note = f"{len(skipped)} image(s) unreadable" if skipped else ""
    return cases, note


def _draw(row, i, sub, view_maps, cut, cut_vector, out_dir: Path, run_dir: Path,
          tile: int) -> ErrorCase:
    images, heats, captions, names, boxes = [], [], [], [], []
    for j, vid in enumerate(sub.view_ids[i]):
        name = VIEW_TYPES[int(vid)].name
        boxes.append(crop_boxes(view_maps, i, j))
        names.append(name if sub.view_mask[i, j] else f"{name} (absent)")
        if not sub.view_mask[i, j]:
            images.append(None)
            heats.append(None)
            captions.append(f"{name}: absent")
            continue
        images.append(sub.images[i, j])
        heats.append(view_maps.maps[i, j] if view_maps is not None else None)
        captions.append(f"{name}" + (f" seen {view_maps.seen[i, j]:.2f}"
                                     if view_maps is not None else ""))
    truth = [n for n in LOCATION_NAMES if row.get(f"{n}_true", 0) == 1]
    probs = np.array([row[f"{n}_prob"] for n in LOCATION_NAMES], dtype=float)
    predicted = [n for n, on in zip(LOCATION_NAMES, probs >= cut_vector) if on]
    path = out_dir / f"{row['kind'].replace(' ', '_')}_{row['study_id']}.png"
    title = (f"{row['study_id']} ({row['kind']}, fold {int(row['fold'])}): "
             f"P(aneurysm) {row['presence_prob']:.2f}")
    save_overlay_montage(images, heats, captions, title, path, columns=4, tile=tile,
                         boxes=boxes)
    return ErrorCase(row["kind"], str(row["study_id"]), int(row["fold"]),
                     float(row["presence_prob"]), cut, truth, predicted, names,
                     str(path.relative_to(run_dir)), view_maps is not None)


def cases_to_json(cases: list[ErrorCase]) -> list[dict]:
    return [asdict(c) for c in cases]
