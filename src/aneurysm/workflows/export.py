"""``aneurysm export RUN``: a fine-tuning run as files that predict without this package.

The export folder holds one ONNX graph per fold (test-time mirror inside), ``model.json`` (the
image cleaning, the view order, the thresholds), ``predict.py`` (needs onnxruntime, numpy,
pillow and pandas only), ``requirements.txt`` and ``MODEL_CARD.md``. It is written in a
temporary folder and renamed into place, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import config_to_dict, read_run_config
from ..errors import AneurysmError
from ..evaluation.model_card import write_model_card
from ..io.atomic import atomic_write_text
from ..io.hashing import params_hash
from ..io.images import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS
from ..schema import KIUM_COLUMNS, KIUM_VIEW_NAMES, LOCATION_NAMES, view_index
from .run_dir import software_versions

#: what the stand-alone predictor needs, and nothing else
PREDICTOR_PACKAGES = ("onnxruntime", "numpy", "pillow", "pandas")


@dataclass(frozen=True)
class ExportResult:
    out: Path
    graphs: list[str]
    #: the largest difference between the graphs and the torch models on a traced batch
    max_difference: float


def fold_checkpoints(run_dir: Path) -> list[Path]:
    """Every fold's kept weights, in fold order (as ``aneurysm predict`` ensembles them)."""
    from ..model.checkpoint import checkpoint_path

    folds = sorted(run_dir.glob("fold_*"), key=lambda d: int(d.name.split("_")[1])
                   if d.name.split("_")[1].isdigit() else -1)
    return [checkpoint_path(d, "best") for d in folds if checkpoint_path(d, "best").is_file()]


def export_run(run_dir: str | Path, out: str | Path, fmt: str = "onnx",
               force: bool = False) -> ExportResult:
    """Export ``run_dir``'s fold ensemble in ``fmt`` (a key of ``EXPORTERS``) into ``out``."""
    run_dir, out = Path(run_dir), Path(out)
    if fmt not in EXPORTERS:
        raise AneurysmError(f"--format must be one of {sorted(EXPORTERS)}, got {fmt!r}")
    config = read_run_config(run_dir)
    checkpoints = fold_checkpoints(run_dir)
    if not checkpoints:
        raise AneurysmError(f"{run_dir}: no fold models (fold_*/best.safetensors); export needs "
                            "a run `aneurysm finetune` has trained")
    if not (run_dir / "thresholds.json").is_file():
        raise AneurysmError(f"{run_dir}: no thresholds.json; has finetune finished every fold?")
    if out.exists() and any(out.iterdir()) and not force:
        raise AneurysmError(f"{out}: exists; use --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        result = EXPORTERS[fmt](run_dir, staging, config, checkpoints)
        write_model_card(run_dir, staging / "MODEL_CARD.md", export={
            "format": fmt, "graphs": result.graphs,
            "predictor": "predict.py (" + ", ".join(PREDICTOR_PACKAGES) + ")",
            "max_difference": result.max_difference})
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return dataclasses.replace(result, out=out)


def export_onnx(run_dir: Path, out: Path, config, checkpoints: list[Path]) -> ExportResult:
    try:
        import onnxruntime  # noqa: F401  (the check below runs the graphs)
        import onnxscript  # noqa: F401  (torch's ONNX exporter writes through it)
    except ImportError as exc:
        raise AneurysmError(f"export needs the export extra ({exc.name} is not installed): "
                            "pip install 'aneurysm[export]'") from None
    import torch

    from ..export.graph import example_inputs, export_fold
    from ..model.checkpoint import load_model

    fine_size = config.preprocess.fine_size if config.model.second_look else 0
    views = len(KIUM_VIEW_NAMES)
    graphs, worst = [], 0.0
    for k, path in enumerate(checkpoints):
        model = load_model(path, config.model, torch.device("cpu"))
        name = f"fold_{k}.onnx"
        export_fold(model, out / name, views, config.preprocess.image_size, fine_size,
                    config.train.tta_mirror)
        # another batch size than the traced one: a graph that fixed its batch fails here
        worst = max(worst, _difference(model, out / name, example_inputs(
            views, config.preprocess.image_size, fine_size, batch=3), config.train.tta_mirror))
        graphs.append(name)
    thresholds = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
    preprocess = dataclasses.asdict(config.preprocess)
    contract = {
        "format": "aneurysm-onnx/1",
        "graphs": graphs,
        "inputs": {"images": "uint8 (batch, views, S, S)", "view_ids": "int64 (batch, views)",
                   "view_mask": "bool (batch, views)",
                   **({"fine": "uint8 (batch, views, F, F)"} if fine_size else {})},
        "preprocess": preprocess,
        "fine_size": fine_size,
        "max_image_pixels": MAX_IMAGE_PIXELS,
        "image_suffixes": list(IMAGE_SUFFIXES),
        "views": list(KIUM_VIEW_NAMES),
        "view_ids": [view_index(v) for v in KIUM_VIEW_NAMES],
        "locations": list(LOCATION_NAMES),
        "columns": list(KIUM_COLUMNS),
        "thresholds": thresholds,
        "tta_mirror": config.train.tta_mirror,
        "precision": "fp32",  # a bf16 run's graphs are fp32: they agree with predict at fp32
        "run": str(run_dir.resolve()),
        "config_hash": params_hash(config_to_dict(config)),
        "model": config.model.architecture(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {**software_versions(), **_versions("onnx", "onnxscript", "onnxruntime")},
        "max_difference": worst,
    }
    atomic_write_text(out / "model.json", json.dumps(contract, indent=1))
    predictor = resources.files("aneurysm.export").joinpath("standalone.py").read_text()
    atomic_write_text(out / "predict.py", predictor)
    atomic_write_text(out / "requirements.txt", "".join(
        f"{p}>={v}\n" if (v := _versions(p).get(p)) else f"{p}\n" for p in PREDICTOR_PACKAGES))
    return ExportResult(out, graphs, worst)


def _difference(model, graph: Path, inputs: tuple, tta: bool) -> float:
    """The largest difference between ``graph`` in onnxruntime and the torch model it came from,
    on ``inputs``: an export that does not compute what the model does is refused."""
    import onnxruntime as ort
    import torch

    from ..export.graph import ExportedFold

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    try:
        got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    except Exception as exc:  # onnxruntime's own error types
        raise AneurysmError(f"{graph}: the exported graph does not run on a batch of "
                            f"{len(inputs[0])} ({str(exc).splitlines()[0]})") from None
    with torch.no_grad():
        want = ExportedFold(model, tta)(*inputs)
    worst = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    if not worst <= 1e-4:
        raise AneurysmError(f"{graph}: the exported graph differs from the model by {worst:.2g} "
                            "(over 1e-4); the export is not kept")
    return worst


def _versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


#: export format -> exporter(run folder, staging folder, run config, fold checkpoints)
EXPORTERS: dict[str, Callable[..., ExportResult]] = {"onnx": export_onnx}
