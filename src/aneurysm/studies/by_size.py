"""How does pretraining's own task depend on the aneurysm's size?

Detection studies report sensitivity by size because small aneurysms are the hard ones. For a
finished pretraining run this bins the validation aneurysm studies of the sources with 3-D
masks and negatives (ADAM, Lausanne) by their largest aneurysm: the radius of a sphere of the
largest mask component's volume, in mm, read from the source's own mask files. Per bin:

- the study AUROC: that bin's aneurysm studies against every aneurysm-free study of the source
  (the model's noisy-OR, no test-time mirroring);
- the view AUROC: views showing the footprint against every view of those aneurysm-free studies.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..metrics import SIZE_BINS, safe_auroc
from .runs import LoadedRun, load_run
from .tables import mean_sd

MASKED = ("adam", "lausanne")  # sources with lesion masks and aneurysm-free cases
#: the bins every by-size table uses (``metrics.SIZE_BINS``), as (low, high, label)
BINS = tuple((low, high, label) for label, low, high in SIZE_BINS)
TAGS = [tag for *_, tag in BINS] + ["all sizes"]


def largest_radius(masks: list[str], ignore: list[int]) -> float:
    """Equivalent-sphere radius in mm of the largest aneurysm in a study's masks (NaN: none)."""
    import nibabel as nib
    from skimage.measure import label

    best = 0.0
    for path in masks:
        image = nib.load(path)
        data = np.asarray(image.dataobj)
        lesion = (data > 0) & ~np.isin(data, ignore)
        voxel = float(abs(np.linalg.det(image.affine[:3, :3])))
        components = label(lesion, connectivity=3)
        if components.max():
            largest = np.bincount(components.ravel())[1:].max()
            best = max(best, (3 * largest * voxel / (4 * math.pi)) ** (1 / 3))
    return best if best > 0 else math.nan


def radii(run: Path, study_ids: list[str], wanted: np.ndarray) -> np.ndarray:
    """Per study: its largest aneurysm's radius, read only where ``wanted`` (NaN elsewhere and
    without a mask)."""
    from ..schema import load_manifest

    records = {r.study_id: r for r in load_manifest(run / "records.json")}
    out = np.full(len(study_ids), math.nan)
    for k in np.flatnonzero(wanted):
        record = records[study_ids[k]]
        volume = record.volume
        if record.source in MASKED and volume is not None and volume.lesion_masks:
            out[k] = largest_radius(list(volume.lesion_masks), list(volume.ignore_labels))
    return out


def by_size(r: LoadedRun, radius: np.ndarray) -> dict[str, dict[str, float]]:
    """Per source (and both pooled) and size bin: study and view AUROC, and the case counts."""
    from ..preprocessing import CELL_ANEURYSM

    a = r.arrays
    shows = (a.footprints == CELL_ANEURYSM).any((-1, -2)) & a.view_mask
    out: dict[str, dict[str, float]] = {}
    for name, sources in [*((s, (s,)) for s in MASKED), ("ADAM + Lausanne", MASKED)]:
        m = r.val & np.isin(r.source, sources)
        free = m & (a.presence < 0.5)
        free_views = r.view_logits[free][a.view_mask[free]]
        row = {"negatives": float(free.sum())}
        for low, high, tag in [*BINS, (0.0, math.inf, "all sizes")]:
            pos = m & (a.presence > 0.5) & (radius >= low) & (radius < high)
            pos_views = r.view_logits[pos][shows[pos]]
            row[f"{tag}: cases"] = float(pos.sum())
            row[f"{tag}: study"] = safe_auroc(np.r_[np.ones(pos.sum()), np.zeros(free.sum())],
                                              np.r_[r.presence[pos], r.presence[free]])
            row[f"{tag}: view"] = safe_auroc(
                np.r_[np.ones(len(pos_views)), np.zeros(len(free_views))],
                np.r_[pos_views, free_views])
        out[name] = row
    return out


def by_size_runs(runs: list[Path], log=print) -> tuple[list[dict], str]:
    """Each run's bins and the tables over them (mean ± sd, case counts per run)."""
    results = []
    for run in runs:
        r = load_run(Path(run))
        results.append(by_size(r, radii(Path(run), list(r.arrays.study_ids), r.val)))
        log(f"{run}: " + "; ".join(
            f"{s} " + ", ".join(f"{tag} {int(row[f'{tag}: cases'])}" for *_, tag in BINS)
            + f", {int(row['negatives'])} aneurysm-free" for s, row in results[-1].items()))
    return results, report(results)


def report(results: list[dict]) -> str:
    lines: list[str] = []
    for kind in ("study", "view"):
        lines += ["",
                  f"{kind.capitalize()} AUROC on validation by the largest aneurysm's radius, "
                  f"mean ± sd over {len(results)} run(s) (aneurysm cases per run in brackets):",
                  "", "| | " + " | ".join(TAGS) + " |", "|---|" + "---|" * len(TAGS)]
        for source in results[0]:
            cells = [f"{mean_sd([x[source][f'{t}: {kind}'] for x in results])} "
                     f"({'/'.join(str(int(x[source][f'{t}: cases'])) for x in results)})"
                     for t in TAGS]
            lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return "\n".join(lines).strip()
