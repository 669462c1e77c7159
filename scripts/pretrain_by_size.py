"""How does pretraining's own task depend on the aneurysm's size?

Detection studies report sensitivity by aneurysm size because small ones are the hard ones.
For each pretraining run given (e.g. the default arm of ``scripts/pretrain_task.py``), on its
validation split, this bins the aneurysm studies of the sources with 3-D masks and negatives
(ADAM, Lausanne) by their largest aneurysm's size: the radius of a sphere of the mask
component's volume, in mm, read from the source's own mask files. It scores, per bin:

- the study AUROC: that bin's aneurysm studies against every aneurysm-free study of the source
  (the model's noisy-OR; no test-time mirroring, as ``pretrain_diagnose.py``);
- the view AUROC: views showing the aneurysm's footprint against every view of those
  aneurysm-free studies.

Prints each run and, over several runs (seeds), mean ± sd.

    python scripts/pretrain_by_size.py runs/pretrain-task/seed_{0,1,2}/default
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
from skimage.measure import label

from aneurysm.preprocessing import CELL_ANEURYSM
from aneurysm.schema import load_manifest
from pretrain_diagnose import _auroc, load_run
from pretrain_evidence import mean_sd  # scripts/ is on the path of a script run from it

MASKED = ("adam", "lausanne")  # sources with lesion masks and aneurysm-free cases
BINS = ((0.0, 2.0, "< 2 mm"), (2.0, 3.0, "2-3 mm"), (3.0, math.inf, ">= 3 mm"))


def largest_radius(masks: list[str], ignore: list[int]) -> float:
    """Equivalent-sphere radius in mm of the largest aneurysm in a study's masks (NaN: none)."""
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
    """Per study in ``study_ids``: its largest aneurysm's radius, read only where ``wanted``
    (NaN elsewhere and without a mask)."""
    records = {r.study_id: r for r in load_manifest(run / "records.json")}
    out = np.full(len(study_ids), math.nan)
    for k in np.flatnonzero(wanted):
        sid = study_ids[k]
        volume = records[sid].volume
        if records[sid].source in MASKED and volume is not None and volume.lesion_masks:
            out[k] = largest_radius(list(volume.lesion_masks), list(volume.ignore_labels))
    return out


def by_size(r: dict, radius: np.ndarray) -> dict[str, dict[str, float]]:
    """Per source (and both pooled) and size bin: study and view AUROC, and the case counts."""
    a = r["arrays"]
    shows = (a.footprints == CELL_ANEURYSM).any((-1, -2)) & a.view_mask
    out: dict[str, dict[str, float]] = {}
    for name, sources in [*((s, (s,)) for s in MASKED), ("ADAM + Lausanne", MASKED)]:
        m = r["val"] & np.isin(r["source"], sources)
        free = m & (a.presence < 0.5)
        free_views = r["view_logits"][free][a.view_mask[free]]
        row = {"negatives": float(free.sum())}
        for low, high, tag in [*BINS, (0.0, math.inf, "all sizes")]:
            pos = m & (a.presence > 0.5) & (radius >= low) & (radius < high)
            pos_views = r["view_logits"][pos][shows[pos]]
            row[f"{tag}: cases"] = float(pos.sum())
            row[f"{tag}: study"] = _auroc(np.r_[np.ones(pos.sum()), np.zeros(free.sum())],
                                          np.r_[r["presence"][pos], r["presence"][free]])
            row[f"{tag}: view"] = _auroc(
                np.r_[np.ones(len(pos_views)), np.zeros(len(free_views))],
                np.r_[pos_views, free_views])
        out[name] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="aneurysm pretrain output folders")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    results = []
    for run in args.runs:
        r = load_run(run)
        results.append(by_size(r, radii(run, list(r["arrays"].study_ids), r["val"])))
        print(f"{run}: " + "; ".join(
            f"{s} " + ", ".join(f"{tag} {int(row[f'{tag}: cases'])}" for *_, tag in BINS)
            + f", {int(row['negatives'])} aneurysm-free" for s, row in results[-1].items()),
            flush=True)
    tags = [tag for *_, tag in BINS] + ["all sizes"]
    for kind in ("study", "view"):
        print(f"\n{kind.capitalize()} AUROC on validation by the largest aneurysm's radius, "
              f"mean ± sd over {len(results)} run(s) (aneurysm cases per run in brackets):\n")
        print("| | " + " | ".join(tags) + " |\n|---|" + "---|" * len(tags))
        for source in results[0]:
            cells = [f"{mean_sd([x[source][f'{t}: {kind}'] for x in results])} "
                     f"({'/'.join(str(int(x[source][f'{t}: cases'])) for x in results)})"
                     for t in tags]
            print(f"| {source} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
