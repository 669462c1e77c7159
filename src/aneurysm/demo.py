"""``aneurysm demo``: the main job end to end on built-in synthetic data.

synthesize -> check -> fine-tune with 5 patient-level folds -> report -> predict the held-out
synthetic test set -> evaluate it against its ground truth.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from .config import DataConfig, ExperimentConfig
from .errors import AneurysmError
from .evaluation.official import Evaluation, evaluate_files
from .evaluation.report import RunReport, write_report
from .inference.predict import predict_run
from .quality import DoctorReport, run_doctor
from .registry import get_adapter
from .synth.kium import SynthConfig, write_kium
from .training.finetune import finetune


@dataclass(frozen=True)
class DemoResult:
    out: Path
    doctor: DoctorReport
    report: RunReport
    held_out: Evaluation
    seconds: float


def run_demo(out: str | Path = "runs/demo", patients: int = 160, test: int = 60, seed: int = 0,
             render_size: int = 256, folds: int = 5, config: ExperimentConfig | None = None,
             force: bool = False, progress: bool = True, log=print) -> DemoResult:
    start = time.time()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise AneurysmError(f"{out}: exists; use --force to replace the demo")
    config = config or ExperimentConfig()
    config = dataclasses.replace(config, data=DataConfig(cache_dir=str(out / "cache"),
                                                         workers=config.data.workers))
    data = out / "data" / "kium"
    log(f"[1/6] synthesizing {patients} training + {test} test patients -> {data}")
    write_kium(data, SynthConfig(patients=patients, test=test, seed=seed,
                                 image_size=render_size), force=True, progress=progress)
    adapter = get_adapter("kium")
    log("[2/6] checking the data")
    doctor = run_doctor(adapter, data, progress=progress)
    if doctor.blocking():
        raise AneurysmError(f"{data}: the data doctor found errors; run `aneurysm check`")
    log(f"[3/6] fine-tuning with {folds} patient-level folds")
    run = out / "run"
    finetune(run, adapter.load(data, "train"), config, folds=folds, force=True,
             progress=progress)
    log("[4/6] writing the cross-validated report")
    report = write_report(run)
    log("[5/6] predicting the held-out test set")
    output = out / "output.csv"
    predict_run(run, adapter.load(data, "test"), output, force=True, progress=progress)
    log("[6/6] evaluating against the held-out ground truth")
    held_out = evaluate_files(data / "groundtruth.csv", output)
    return DemoResult(out, doctor, report, held_out, time.time() - start)
