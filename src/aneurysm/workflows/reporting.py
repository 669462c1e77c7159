"""``aneurysm report RUN``: every report a run folder can give, in one call.

A fine-tuning run gets report.md/json, its plots, a gallery of its out-of-fold errors drawn by
their fold models, report.html and MODEL_CARD.md; a pretraining run gets report.html with
per-source figures and a montage of projected cases. This module only orchestrates: metrics live in
``evaluation``, the pictures of cases in ``inference.cases``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import AneurysmError
from ..evaluation.html import finetune_context, pretrain_context, write_html
from ..evaluation.model_card import write_model_card
from ..evaluation.official import Evaluation
from ..evaluation.report import RunReport, write_report
from ..io.atomic import atomic_write_text

EVALUATION = "evaluation.json"


@dataclass(frozen=True)
class ReportFiles:
    kind: str  # "finetune" or "pretrain"
    html: Path
    report: RunReport | None  # the cross-validated figures (fine-tuning runs)
    cases: int  # error cases drawn


def report_run(run_dir: str | Path, n_boot: int = 2000, cases_per_kind: int = 4,
               report: RunReport | None = None) -> ReportFiles:
    """``report``: the run's ``write_report`` result when the caller already has it (the demo
    writes report.md before it scores the test set), so it is not computed twice."""
    run_dir = Path(run_dir)
    if (run_dir / "oof.csv").is_file():
        from ..inference.cases import cases_to_json, render_error_cases

        report = report or write_report(run_dir, n_boot)
        cases, note = render_error_cases(run_dir, cases_per_kind)
        listed = cases_to_json(cases)
        atomic_write_text(run_dir / "report_cases.json", json.dumps(listed, indent=1))
        html = write_html(run_dir, finetune_context(run_dir, report, listed, note, n_boot))
        write_model_card(run_dir)
        return ReportFiles("finetune", html, report, len(cases))
    if (run_dir / "pretrain_report.json").is_file():
        html = write_html(run_dir, pretrain_context(run_dir, projected_montage(run_dir)))
        return ReportFiles("pretrain", html, None, 0)
    raise AneurysmError(f"{run_dir}: neither a finished finetune run (oof.csv) nor a "
                        "pretraining run (pretrain_report.json)")


def projected_montage(run_dir: Path) -> Path | None:
    """One positive case per source in the eight views, from the run's own manifest."""
    from ..config import read_run_config
    from ..projection.preview import save_sources_preview
    from ..schema import load_manifest

    records = load_manifest(run_dir / "records.json")
    sources: dict[str, list] = {}
    for r in records:
        if all(v.path and Path(v.path).is_file() for v in r.views if v.path) and r.views:
            sources.setdefault(r.source, []).append(r)
    if not sources:
        return None
    config = read_run_config(run_dir)
    return save_sources_preview(sources, run_dir / "report_figures" / "projected.png",
                                config.data.cache_dir, config.projection)


def save_evaluation(run_dir: str | Path, evaluation: Evaluation) -> Path:
    """Keep a held-out score with the run, so its report shows it beside the CV figures."""
    path = Path(run_dir) / EVALUATION
    atomic_write_text(path, json.dumps(asdict(evaluation), indent=1))
    return path
