"""``MODEL_CARD.md``: what a fine-tuned model is, in the sections model cards share.

The sections follow Hugging Face's model card (details, uses, limitations, training data and
procedure, evaluation, environment) with the fields of a MONAI bundle's ``metadata.json`` that
say how to feed it (inputs, outputs, versions). Every figure comes from the run folder's own
files; what the run did not measure is said to be missing, never filled in.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write_text
from ..schema import KIUM_VIEW_NAMES, LOCATION_NAMES
from .html import provenance, template_env

CARD = "MODEL_CARD.md"
#: a synthetic data root says so with the settings it was drawn with (``aneurysm synth``)
SYNTH_MARKER = "synth_config.yaml"


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def training_data(run_dir: Path) -> dict[str, Any]:
    """Studies, positives and sources of the run's own manifest, and whether the data root says
    it is synthetic."""
    manifest = _json(run_dir / "records.json").get("records", [])
    sources = Counter(r["source"] for r in manifest)
    positives = sum(1 for r in manifest if r.get("presence"))
    roots = {Path(v[1]).parent.parent for r in manifest for v in r.get("views", [])[:1] if v[1]}
    synthetic = sorted(str(r) for r in roots if (r / SYNTH_MARKER).is_file())
    return {"studies": len(manifest), "positives": positives, "sources": dict(sources),
            "roots": sorted(str(r) for r in roots), "synthetic": synthetic}


def card_context(run_dir: str | Path, export: dict | None = None) -> dict[str, Any]:
    run_dir = Path(run_dir)
    from ..config import read_run_config

    config = read_run_config(run_dir)
    report = _json(run_dir / "report.json") or None
    held_out = _json(run_dir / "evaluation.json") or None
    if report:
        report["locations"] = sorted(
            (s for s in report["locations"] if s["auroc"] == s["auroc"]),
            key=lambda s: -s["auroc"])
    return {
        "run": str(run_dir), "name": run_dir.resolve().name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance(run_dir), "config": config, "report": report,
        "held_out": held_out, "data": training_data(run_dir), "export": export,
        "views": KIUM_VIEW_NAMES, "n_locations": len(LOCATION_NAMES),
        "thresholds": _json(run_dir / "thresholds.json").get("rule"),
        "folds": len(list(run_dir.glob("fold_*"))),
    }


def write_model_card(run_dir: str | Path, path: str | Path | None = None,
                     export: dict | None = None) -> Path:
    """Write the card of fine-tuning run ``run_dir`` (into the run, or to ``path``: an export
    folder's, with ``export`` saying what was exported)."""
    path = Path(path) if path is not None else Path(run_dir) / CARD
    text = template_env(html=False).get_template("model_card.md.j2").render(
        **card_context(run_dir, export))
    atomic_write_text(path, text)
    return path
