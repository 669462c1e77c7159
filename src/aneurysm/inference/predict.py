"""``aneurysm predict``: ensemble the fold models over a test set, write output.csv in the
challenge's exact format (23 columns, test.csv's row order)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import read_run_config
from ..data.arrays import build_arrays, image_caches
from ..errors import AneurysmError
from ..io.atomic import atomic_path
from ..model.checkpoint import checkpoint_path, load_model
from ..model.predict import predict_arrays, resolve_device
from ..schema import KIUM_COLUMNS, LOCATION_NAMES, StudyRecord


@dataclass(frozen=True)
class PredictResult:
    output: Path
    studies: int
    folds: int
    partial_studies: list[str]  # predicted from fewer views than they should have
    skipped_images: list[str]
    maps: list[Path] = field(default_factory=list)  # one montage per patient, with --maps
    #: the ensemble's probabilities in output.csv's layout (locations as probabilities too)
    probabilities: pd.DataFrame | None = None


def predict_run(run_dir: str | Path, records: list[StudyRecord], output: str | Path,
                locations: str = "binary", tta: bool | None = None, force: bool = False,
                maps_dir: str | Path | None = None, progress: bool = True) -> PredictResult:
    """Ensemble every fold's kept model over ``records`` and write output.csv; with ``maps_dir``,
    also a montage per patient of its views with the ensemble's aneurysm maps."""
    run_dir, output = Path(run_dir), Path(output)
    if output.exists() and not force:
        raise AneurysmError(f"{output}: exists; use --force to overwrite it")
    if locations not in ("binary", "prob"):
        raise AneurysmError(f"--locations must be binary or prob, got {locations!r}")
    config = read_run_config(run_dir)
    checkpoints = [checkpoint_path(d, "best") for d in sorted(run_dir.glob("fold_*"))
                   if checkpoint_path(d, "best").is_file()]
    if not checkpoints:
        raise AneurysmError(f"{run_dir}: no fold_*/best.safetensors; has finetune finished a fold?")
    cache, fine = image_caches(config.data.cache_dir, config.preprocess,
                               config.model.second_look)
    arrays, skipped, dropped = build_arrays(records, cache, skip_bad=True,
                                            workers=config.data.workers or None,
                                            progress=progress, fine_cache=fine)
    if dropped:
        raise AneurysmError(f"study {dropped[0]} has no usable view ({len(dropped)} such "
                            f"studies: {', '.join(dropped[:5])})")
    device = resolve_device(config.train.device)
    if maps_dir is not None and not config.model.draws_maps:
        raise AneurysmError(f"{run_dir}: --maps needs a model that draws maps; this run uses "
                            f"{config.model.name!r}")
    presence = np.zeros(len(arrays))
    probs = np.zeros((len(arrays), len(LOCATION_NAMES)))
    models = []
    for path in checkpoints:
        model = load_model(path, config.model, device)
        p, loc, _ = predict_arrays(model, arrays, config.train.predict_options(), device,
                                   tta_mirror=tta)
        presence += p / len(checkpoints)
        probs += loc / len(checkpoints)
        models.append(model)
    cuts = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
    binary = (probs >= np.array([cuts[n] for n in LOCATION_NAMES])).astype(int)
    index = [int(s) if s.isdigit() else s for s in arrays.study_ids]
    probabilities = _output_table(index, presence, probs)
    table = probabilities if locations == "prob" else _output_table(index, presence, binary)
    with atomic_path(output) as tmp:
        table.to_csv(tmp, index=False)
    montages = []
    if maps_dir is not None:
        from .maps import predict_maps, save_map_montages

        view_maps = predict_maps(models, arrays, config.train.predict_options(), device)
        montages = save_map_montages(maps_dir, arrays, view_maps, presence, probs, binary,
                                     progress)
    expected = {r.study_id: len(r.views) for r in records}
    partial = [s for s, m in zip(arrays.study_ids, arrays.view_mask) if m.sum() < expected[s]]
    return PredictResult(output, len(arrays), len(checkpoints), partial,
                         [s.path for s in skipped], montages, probabilities)


def _output_table(index: list, presence: np.ndarray, locations: np.ndarray) -> pd.DataFrame:
    """The 23 official columns, one row per study in the given order."""
    table = pd.DataFrame(locations, columns=list(LOCATION_NAMES))
    table.insert(0, "Aneurysm", presence)
    table.insert(0, "Index", index)
    return table[list(KIUM_COLUMNS)]
