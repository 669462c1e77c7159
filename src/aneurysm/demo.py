"""``aneurysm demo``: the main job end to end on built-in synthetic data.

synthesize (K-ium + external 3-D sources) -> check -> pretrain on the external sources ->
fine-tune from that checkpoint with 5 patient-level folds -> report -> predict the held-out
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
from .sources import load_sources
from .synth.external import ExternalSynthConfig, write_external
from .synth.kium import SynthConfig, write_kium
from .training.finetune import finetune
from .training.pretrain import CHECKPOINT, SourceScore, pretrain


@dataclass(frozen=True)
class DemoResult:
    out: Path
    doctor: DoctorReport
    report: RunReport
    held_out: Evaluation
    pretrain_scores: list[SourceScore]
    seconds: float


def run_demo(out: str | Path = "runs/demo", patients: int = 160, test: int = 60, seed: int = 0,
             render_size: int = 256, folds: int = 5, config: ExperimentConfig | None = None,
             external: ExternalSynthConfig | None = ExternalSynthConfig(rsna=60, adam=30,
                                                                        lausanne=40, cada=20),
             force: bool = False, progress: bool = True, log=print) -> DemoResult:
    """``external=None`` skips pretraining and fine-tunes from scratch."""
    start = time.time()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise AneurysmError(f"{out}: exists; use --force to replace the demo")
    config = config or ExperimentConfig()
    config = dataclasses.replace(config, data=DataConfig(cache_dir=str(out / "cache"),
                                                         workers=config.data.workers))
    data = out / "data" / "kium"
    steps = 8 if external else 6
    log(f"[1/{steps}] synthesizing {patients} training + {test} test patients -> {data}")
    write_kium(data, SynthConfig(patients=patients, test=test, seed=seed,
                                 image_size=render_size), force=True, progress=progress)
    step = 2
    if external:
        log(f"[{step}/{steps}] synthesizing external 3-D sources -> {out / 'data'}")
        write_external(out / "data", dataclasses.replace(external, seed=seed + 1), force=True,
                       progress=progress)
        step += 1
    adapter = get_adapter("kium")
    log(f"[{step}/{steps}] checking the data")
    doctor = run_doctor(adapter, data, progress=progress)
    if doctor.blocking():
        raise AneurysmError(f"{data}: the data doctor found errors; run `aneurysm check`")
    step += 1
    init, scores = None, []
    if external:
        log(f"[{step}/{steps}] pretraining on the pooled external sources")
        sources, _ = load_sources(["external"], out / "data")
        scores = pretrain(out / "pretrain", sources, config, force=True, progress=progress)
        init = str(out / "pretrain" / CHECKPOINT)
        step += 1
    log(f"[{step}/{steps}] fine-tuning with {folds} patient-level folds"
        + (" from the pretrained checkpoint" if init else " from scratch"))
    run = out / "run"
    finetune(run, adapter.load(data, "train"), config, folds=folds, init=init, force=True,
             progress=progress)
    log(f"[{step + 1}/{steps}] writing the cross-validated report")
    report = write_report(run)
    maps = out / "maps" if config.model.head == "dense" else None
    log(f"[{step + 2}/{steps}] predicting the held-out test set"
        + (f", with a map montage per patient in {maps}" if maps else ""))
    output = out / "output.csv"
    predict_run(run, adapter.load(data, "test"), output, force=True, maps_dir=maps,
                progress=progress)
    log(f"[{step + 3}/{steps}] evaluating against the held-out ground truth")
    held_out = evaluate_files(data / "groundtruth.csv", output)
    return DemoResult(out, doctor, report, held_out, scores, time.time() - start)
