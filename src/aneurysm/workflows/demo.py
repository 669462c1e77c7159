"""``aneurysm demo``: the main job end to end on built-in synthetic data.

synthesize (K-ium + external 3-D sources) -> check -> pretrain on the external sources ->
fine-tune from that checkpoint with patient-level folds -> report -> predict the held-out
synthetic test set, with a map montage per patient -> evaluate it against its ground truth.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DataConfig, ExperimentConfig
from ..errors import AneurysmError
from ..evaluation.official import (
    Evaluation,
    evaluate_files,
    evaluate_tables,
    read_table,
)
from ..evaluation.report import RunReport, write_report
from ..inference.predict import predict_run
from ..metrics import SizeScore
from ..quality import DoctorReport, run_doctor
from ..registry import get_adapter
from ..sources import load_sources
from ..synth.external import ExternalSynthConfig, write_external
from ..synth.kium import SynthConfig, write_kium
from .finetune import finetune
from .pretrain import CHECKPOINT, SourceScore, pretrain
from .reporting import report_run, save_evaluation

#: The demo's external sources: enough cases for pretraining to learn its task in minutes.
DEMO_EXTERNAL = ExternalSynthConfig(rsna=80, adam=40, lausanne=60, cada=20)


@dataclass(frozen=True)
class DemoResult:
    out: Path
    doctor: DoctorReport
    report: RunReport
    held_out: Evaluation  # official metrics of output.csv (0/1 locations)
    held_out_locations: float  # mean per-location AUROC of the location probabilities
    pretrain_scores: list[SourceScore]
    seconds: float
    maps: Path | None
    steps: list[tuple[str, float]]  # (step, seconds)
    by_size: tuple[SizeScore, ...] = ()  # held-out AUROC by the largest aneurysm's radius


def run_demo(out: str | Path = "runs/demo", patients: int = 160, test: int = 60, seed: int = 0,
             render_size: int = 256, folds: int = 5, config: ExperimentConfig | None = None,
             external: ExternalSynthConfig | None = DEMO_EXTERNAL, force: bool = False,
             progress: bool = True, log=print) -> DemoResult:
    """``external=None`` skips pretraining and fine-tunes from scratch."""
    start = time.time()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise AneurysmError(f"{out}: exists; use --force to replace the demo")
    config = config or ExperimentConfig()
    config = dataclasses.replace(config, data=DataConfig(cache_dir=str(out / "cache"),
                                                         workers=config.data.workers))
    data = out / "data" / "kium"
    maps = out / "maps" if config.model.draws_maps else None
    n_steps = 6 + (2 if external else 0)
    steps = _Steps(n_steps, log)
    with steps(f"synthesizing {patients} training + {test} test patients -> {data}"):
        write_kium(data, SynthConfig(patients=patients, test=test, seed=seed,
                                     image_size=render_size), force=True, progress=progress)
    if external:
        with steps(f"synthesizing {external.cases} external 3-D cases -> {out / 'data'}"):
            write_external(out / "data", dataclasses.replace(external, seed=seed + 1),
                           force=True, progress=progress)
    adapter = get_adapter("kium")
    with steps("checking the data"):
        doctor = run_doctor(adapter, data, progress=progress)
        if doctor.blocking():
            raise AneurysmError(f"{data}: the data doctor found errors; run `aneurysm check`")
    init, scores = None, []
    if external:
        with steps("pretraining on the pooled external sources"):
            sources, _ = load_sources(["external"], out / "data")
            scores = pretrain(out / "pretrain", sources, config, force=True, progress=progress)
            report_run(out / "pretrain")
            init = str(out / "pretrain" / CHECKPOINT)
    run = out / "run"
    with steps(f"fine-tuning with {folds} patient-level folds"
               + (" from the pretrained checkpoint" if init else " from scratch")):
        finetune(run, adapter.load(data, "train"), config, folds=folds, init=init, force=True,
                 progress=progress)
    with steps("writing the cross-validated report"):
        report = write_report(run)
    output = out / "output.csv"
    with steps("predicting the held-out test set"
               + (f", with a map montage per patient in {maps}" if maps else "")):
        predicted = predict_run(run, adapter.load(data, "test"), output, force=True,
                                maps_dir=maps, progress=progress)
    with steps("evaluating against the held-out ground truth; report.html"):
        truth = data / "groundtruth.csv"
        held_out = evaluate_files(truth, output)
        probs = evaluate_tables(read_table(truth, "ground truth"),
                                predicted.probabilities.set_index("Index"), truth, output)
        save_evaluation(run, held_out)
        report_run(run, report=report)

    defined = [s.auroc for s in probs.locations if not math.isnan(s.auroc)]
    return DemoResult(out, doctor, report, held_out,
                      float(np.mean(defined)) if defined else math.nan, scores,
                      time.time() - start, maps, steps.done, held_out.by_size)


class _Steps:
    """Numbered steps that log their name on entry and their duration on exit."""

    def __init__(self, total: int, log) -> None:
        self.total, self.log, self.done = total, log, []

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.log(f"[{len(self.done) + 1}/{self.total}] {name}")
        start = time.time()
        yield
        self.done.append((name, time.time() - start))
        self.log(f"      done in {self.done[-1][1]:.0f} s")
