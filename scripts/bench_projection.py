"""Projection cost per volume: the angiographic DRR against the MIP, same volumes, one process.

    python scripts/bench_projection.py --data-root runs/demo/data --per-source 4

Projects the first N volumes of every external source under the data root into a fresh cache,
once per mode, in alternating order, one worker, and prints seconds per volume for each.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from aneurysm.projection import ProjectionConfig, project_records
from aneurysm.sources import load_sources


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default="runs/demo/data")
    ap.add_argument("--per-source", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    found, _ = load_sources(["external"], Path(args.data_root))
    records = [r for recs in found.values() for r in recs[: args.per_source]]
    seconds: dict[str, list[float]] = {"drr": [], "mip": []}
    for _ in range(args.rounds):
        for mode in seconds:
            config = ProjectionConfig(mode=mode).resolved(args.image_size)
            with tempfile.TemporaryDirectory() as cache:
                start = time.perf_counter()
                project_records(records, cache, config, workers=1, progress=False)
                seconds[mode].append((time.perf_counter() - start) / len(records))
    print(f"{len(records)} volumes ({', '.join(found)}), {args.image_size} px, one worker:")
    for mode, values in seconds.items():
        print(f"  {mode}: {statistics.mean(values):.2f} s per volume "
              f"({min(values):.2f}-{max(values):.2f} over {args.rounds} rounds)")
    print(f"  drr / mip: {statistics.mean(seconds['drr']) / statistics.mean(seconds['mip']):.2f}x")


if __name__ == "__main__":
    main()
