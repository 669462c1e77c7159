"""``report.html``: one self-contained page per run, to open and share.

Images are embedded as data URIs, there is no script and nothing is fetched, so the file can be
mailed or archived alone. The page is rendered by a jinja2 template from the run folder's own
files: what the report says is what the run wrote.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from ..io.atomic import atomic_write_text
from ..metrics import Interval, location_intervals
from ..schema import LOCATION_NAMES
from .plots import plot_learning_curves, plot_location_scores, plot_roc_band
from .report import RunReport

REPORT = "report.html"


def template_env(html: bool = True) -> Environment:
    """The package's templates, with the number filters; ``html``: escaped for a page
    (the model card is Markdown and is not)."""
    env = Environment(loader=PackageLoader("aneurysm.evaluation", "templates"),
                      autoescape=select_autoescape(["html", "j2"]) if html else False,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["f3"] = _f3
    env.filters["ci"] = _ci
    return env


def _f3(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.3f}"


def _ci(i: Interval | dict | None) -> str:
    if i is None:
        return "n/a"
    i = i if isinstance(i, dict) else asdict(i)
    if math.isnan(i["value"]):
        return "n/a"
    if math.isnan(i["low"]):
        return f"{i['value']:.3f}"
    return f"{i['value']:.3f} [{i['low']:.3f}, {i['high']:.3f}]"


def data_uri(path: Path) -> str:
    """A PNG as a data URI, so the page carries its own pictures."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def provenance(run_dir: Path) -> dict:
    """What produced the run: config, seed, command, versions, commit, and the pretrained
    checkpoint it started from with that checkpoint's own sources."""
    meta = _json(run_dir / "meta.json")
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    init = meta.get("init")
    start: dict[str, Any] | None = None
    if init:
        start = {"path": init, "found": Path(init).is_file()}
        if start["found"]:
            from ..model.checkpoint import read_checkpoint

            m = read_checkpoint(init).get("metadata", {})
            start.update(epoch=m.get("epoch"), sources=m.get("sources", {}),
                         projection=m.get("projection"))
        scores = _json(Path(init).parent / "pretrain_report.json").get("per_source")
        start["per_source"] = scores or []
    return {"meta": meta, "config": config, "init": start,
            "versions": meta.get("versions", {})}


def _cases(cases: list, run_dir: Path) -> list[dict]:
    return [{**c, "uri": data_uri(run_dir / c["image"])} for c in cases
            if (run_dir / c["image"]).is_file()]


def finetune_context(run_dir: Path, report: RunReport, cases: list[dict], cases_note: str,
                     n_boot: int) -> dict:
    figures = run_dir / "report_figures"
    figures.mkdir(exist_ok=True)
    oof = pd.read_csv(run_dir / "oof.csv", dtype={"study_id": str})
    oof = oof[~oof["presence_true"].isna()]
    y, p = oof["presence_true"].to_numpy(int), oof["presence_prob"].to_numpy()
    plot_roc_band(y, p, figures / "roc_band.png", n_boot=min(n_boot, 500))
    truth = oof[[f"{n}_true" for n in LOCATION_NAMES]].to_numpy()
    probs = oof[[f"{n}_prob" for n in LOCATION_NAMES]].to_numpy()
    known = ~np.isnan(truth).any(axis=1)
    locations = location_intervals(truth[known], probs[known], n_boot=min(n_boot, 500))
    locations.sort(key=lambda s: -1.0 if math.isnan(s.auroc.value) else s.auroc.value,
                   reverse=True)
    plot_location_scores([s.name for s in locations],
                         np.array([s.auroc.value for s in locations]),
                         np.array([s.auroc.low for s in locations]),
                         np.array([s.auroc.high for s in locations]),
                         [s.positives for s in locations], figures / "locations.png")
    held_out = _json(run_dir / "evaluation.json") or None
    if held_out:
        held_out["difference"] = held_out["presence"]["value"] - report.presence.value
    images = {
        "roc": data_uri(figures / "roc_band.png"),
        "reliability": data_uri(run_dir / "reliability.png"),
        "curves": data_uri(run_dir / "learning_curves.png"),
        "locations": data_uri(figures / "locations.png"),
    }
    return {"kind": "finetune", "report": report, "locations": locations, "images": images,
            "cases": _cases(cases, run_dir), "cases_note": cases_note, "held_out": held_out,
            "misses": sum(c["kind"] == "false negative" for c in cases),
            "alarms": sum(c["kind"] == "false positive" for c in cases)}


def pretrain_context(run_dir: Path, montage: Path | None) -> dict:
    figures = run_dir / "report_figures"
    figures.mkdir(exist_ok=True)
    history = pd.read_csv(run_dir / "history.csv")
    plot_learning_curves({"pretraining": history}, figures / "pretrain_curves.png")
    report = _json(run_dir / "pretrain_report.json")
    images = {"curves": data_uri(figures / "pretrain_curves.png")}
    if montage is not None and montage.is_file():
        images["montage"] = data_uri(montage)
    return {"kind": "pretrain", "per_source": report.get("per_source", []),
            "skipped": report.get("skipped", []), "history": history.to_dict("records"),
            "images": images}


def write_html(run_dir: str | Path, context: dict) -> Path:
    """Render the page atomically; ``context`` from ``finetune_context`` or
    ``pretrain_context``."""
    run_dir = Path(run_dir)
    page = template_env().get_template("report.html.j2").render(
        run=str(run_dir), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        provenance=provenance(run_dir), **context)
    atomic_write_text(run_dir / REPORT, page)
    return run_dir / REPORT
