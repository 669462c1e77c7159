"""``aneurysm predict``: ensemble the fold models over a test set, write output.csv in the
challenge's exact format (23 columns, test.csv's row order)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import AneurysmError
from ..io.atomic import atomic_path
from ..model.checkpoint import read_checkpoint
from ..model.multiview import build_model
from ..preprocessing import ImageCache
from ..schema import KIUM_COLUMNS, LOCATION_NAMES, StudyRecord
from ..training.arrays import build_arrays
from ..training.loop import predict_arrays, resolve_device
from ..training.run_dir import read_run_config


@dataclass(frozen=True)
class PredictResult:
    output: Path
    studies: int
    folds: int
    partial_studies: list[str]  # predicted from fewer views than they should have
    skipped_images: list[str]


def predict_run(run_dir: str | Path, records: list[StudyRecord], output: str | Path,
                locations: str = "binary", tta: bool | None = None, force: bool = False,
                progress: bool = True) -> PredictResult:
    run_dir, output = Path(run_dir), Path(output)
    if output.exists() and not force:
        raise AneurysmError(f"{output}: exists; use --force to overwrite it")
    if locations not in ("binary", "prob"):
        raise AneurysmError(f"--locations must be binary or prob, got {locations!r}")
    config = read_run_config(run_dir)
    checkpoints = sorted(run_dir.glob("fold_*/best.pt"))
    if not checkpoints:
        raise AneurysmError(f"{run_dir}: no fold_*/best.pt; has finetune finished a fold?")
    cache = ImageCache(config.data.cache_dir, config.preprocess)
    arrays, skipped, dropped = build_arrays(records, cache, skip_bad=True,
                                            workers=config.data.workers or None,
                                            progress=progress)
    if dropped:
        raise AneurysmError(f"study {dropped[0]} has no usable view ({len(dropped)} such "
                            f"studies: {', '.join(dropped[:5])})")
    device = resolve_device(config.train.device)
    presence = np.zeros(len(arrays))
    probs = np.zeros((len(arrays), len(LOCATION_NAMES)))
    for path in checkpoints:
        model = build_model(config.model).to(device)
        model.load_state_dict(read_checkpoint(path)["state_dict"])
        p, loc, _ = predict_arrays(model, arrays, config.train, device, tta_mirror=tta)
        presence += p / len(checkpoints)
        probs += loc / len(checkpoints)
    if locations == "binary":
        cuts = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
        loc_out = (probs >= np.array([cuts[n] for n in LOCATION_NAMES])).astype(int)
    else:
        loc_out = probs
    table = pd.DataFrame(loc_out, columns=list(LOCATION_NAMES))
    table.insert(0, "Aneurysm", presence)
    table.insert(0, "Index", [int(s) if s.isdigit() else s for s in arrays.study_ids])
    table = table[list(KIUM_COLUMNS)]
    with atomic_path(output) as tmp:
        table.to_csv(tmp, index=False)
    expected = {r.study_id: len(r.views) for r in records}
    partial = [s for s, m in zip(arrays.study_ids, arrays.view_mask) if m.sum() < expected[s]]
    return PredictResult(output, len(arrays), len(checkpoints), partial,
                         [s.path for s in skipped])
