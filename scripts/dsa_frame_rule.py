"""Which frame of a DSA run should stand for the view: the frame of peak arterial contrast, or
each pixel's darkest value over the arterial phase? Measured on synthetic runs, whose truth is
the K-ium frame they were made from, over several seeds of the runs' noise and timing.

    python scripts/dsa_frame_rule.py KIUM_ROOT --seeds 0 1 2

Prints, per rule, the mean absolute grey-level error against the truth over the vessel pixels
(where the truth is 20 or more levels darker than its field) and over all pixels, mean ± sd
over seeds, and the paired difference per seed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from aneurysm.io.dsa import FRAME_RULES, arterial_frame, read_run
from aneurysm.io.images import load_grayscale
from aneurysm.synth.dsa_runs import RUN_TABLE, write_dsa_runs


def errors(kium_root: Path, seed: int, frames: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        runs = write_dsa_runs(kium_root, Path(tmp) / "runs", frames=frames, seed=seed)
        table = pd.read_csv(runs / RUN_TABLE)
        sums = {rule: [0.0, 0, 0.0, 0] for rule in FRAME_RULES}
        for row in table.itertuples(index=False):
            run = read_run(runs / row.file)
            view = f"{row.injection}-{run.projection}"
            truth = load_grayscale(kium_root / "train_set" / f"{row.Index}{view}.jpg").astype(float)
            vessel = truth < np.median(truth) - 20
            for rule in FRAME_RULES:
                err = np.abs(arterial_frame(run.frames, rule) - truth)
                s = sums[rule]
                s[0] += err[vessel].sum(); s[1] += vessel.sum()
                s[2] += err.sum(); s[3] += err.size
    return {rule: (s[0] / max(s[1], 1), s[2] / s[3]) for rule, s in sums.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kium_root", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--frames", type=int, default=12)
    args = ap.parse_args()
    per_seed = {s: errors(args.kium_root, s, args.frames) for s in args.seeds}
    for k, what in enumerate(("vessel pixels", "all pixels")):
        print(f"mean absolute error against the truth, {what} (grey levels):")
        for rule in FRAME_RULES:
            values = [per_seed[s][rule][k] for s in args.seeds]
            print(f"  {rule:8s} {statistics.mean(values):6.2f} ± {statistics.stdev(values):.2f}")
        diffs = [per_seed[s]["minimum"][k] - per_seed[s]["peak"][k] for s in args.seeds]
        print("  minimum − peak per seed: " + ", ".join(f"{d:+.2f}" for d in diffs))


if __name__ == "__main__":
    main()
