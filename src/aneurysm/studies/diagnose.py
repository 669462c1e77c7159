"""Where does pretraining's own task fail: in the views, in pooling them, or in what a view shows?

For each finished pretraining run, on its own validation split, per source with negatives:

1. **pooling**: the study AUROC as the model pools views (noisy-OR; no test-time mirroring, so
   it can differ from the run's report by a few hundredths) and with the clearest view alone
   (the maximum over views);
2. **views**: the view AUROC, views showing the aneurysm's footprint against every view of the
   aneurysm-free studies;
3. **a patch ceiling** (``patches``): could a second stage tell the aneurysm from what the map
   confuses it with?

Over several runs (seeds) it reports mean ± sd and the per-run paired differences.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..metrics import safe_auroc
from .runs import LoadedRun, load_run
from .spec import NEGATIVE_SOURCES
from .tables import mean_sd

POOLING = ("study, noisy-OR", "study, max over views", "view")


def pooling_and_views(r: LoadedRun) -> dict[str, dict[str, float]]:
    """Per source on validation: the study AUROC by noisy-OR and by the maximum over views,
    and the view AUROC."""
    from ..preprocessing import CELL_ANEURYSM

    a = r.arrays
    shows = (a.footprints == CELL_ANEURYSM).any((-1, -2)) & a.view_mask
    out = {}
    for source in NEGATIVE_SOURCES:
        m = r.val & (r.source == source)
        y = a.presence[m]
        logits = np.where(a.view_mask[m], r.view_logits[m], -np.inf)
        free = (y < 0.5)[:, None] & a.view_mask[m]
        positive, negative = r.view_logits[m][shows[m]], r.view_logits[m][free]
        out[source] = {
            "study, noisy-OR": safe_auroc(y, r.presence[m]),
            "study, max over views": safe_auroc(y, logits.max(1)),
            "view": safe_auroc(np.r_[np.ones(len(positive)), np.zeros(len(negative))],
                               np.r_[positive, negative])}
    return out


def diagnose(runs: list[Path], patches: bool = True, patch: int = 24, epochs: int = 40,
             seed: int = 0, peaks: int = 3, montage: Path | None = None,
             log=print) -> tuple[list[dict], str]:
    """Each run's figures ({"run", "pooling", "patches"}) and the tables over them."""
    from .montage import hardest_views
    from .patches import patch_ceiling

    results = []
    for run in runs:
        r = load_run(Path(run))
        if montage is not None and not results:
            hardest_views(r, montage)
        results.append({"run": str(run), "pooling": pooling_and_views(r), "patches": (
            patch_ceiling(r, patch, epochs, seed, peaks) if patches else {})})
        counts = results[-1]["patches"].get("counts", {})
        log(f"{run}: " + (", ".join(f"{k} {int(v)}" for k, v in counts.items()) + " patches"
                          if counts else "read"))
    return results, report(results, patch, peaks)


def report(results: list[dict], patch: int = 24, peaks: int = 3) -> str:
    """The tables of ``diagnose``'s results, as markdown."""
    lines = [f"Study and view AUROC on validation, mean ± sd over {len(results)} run(s):", "",
             *_table(results, "pooling", list(POOLING), list(NEGATIVE_SOURCES)), "",
             "Paired differences per run, max over views − noisy-OR: " + _gains(
                 results, lambda r, s: r["pooling"][s]["study, max over views"]
                 - r["pooling"][s]["study, noisy-OR"])]
    if not any(r["patches"] for r in results):
        return "\n".join(lines)
    cascade = f"study, patch CNN at top-{peaks} peaks"
    for r in results:  # the model's own study AUROC beside the two-stage reading
        for s in NEGATIVE_SOURCES:
            r["patches"].setdefault(s, {})["study, noisy-OR"] = r["pooling"][s]["study, noisy-OR"]
    lines += ["", f"Footprints against the dense map's peak in aneurysm-free views, {patch}-px "
              "patches, validation (and the training patches the CNN learnt):", "",
              *_table(results, "patches", ["patch CNN", "dense map"],
                      [*NEGATIVE_SOURCES, "training patches"]), "",
              f"Study AUROC on validation read by the patch CNN at each view's {peaks} "
              "strongest map cells (a two-stage reading), against the model's own:", "",
              *_table(results, "patches", ["study, noisy-OR", cascade], list(NEGATIVE_SOURCES)),
              "", "Paired differences per run, two-stage reading − the model's own: " + _gains(
                  results, lambda r, s: r["patches"].get(s, {}).get(cascade, math.nan)
                  - r["pooling"][s]["study, noisy-OR"])]
    return "\n".join(lines)


def _table(results: list[dict], key: str, columns: list[str], rows: list[str]) -> list[str]:
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(
            mean_sd([r[key].get(row, {}).get(c, math.nan) for r in results]) for c in columns)
            + " |")
    return lines


def _gains(results: list[dict], gain) -> str:
    return "; ".join(f"{s} " + ", ".join(f"{gain(r, s):+.3f}" for r in results)
                     for s in NEGATIVE_SOURCES)
