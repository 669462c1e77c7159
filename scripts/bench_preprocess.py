"""Preprocessing throughput: our cached, parallel pipeline against a plain serial PIL loop.

Prints images/second side by side for: a plain loop (decode + clean, no cache), our first run
(parallel, filling the cache) and our second run (everything cached).

    python scripts/bench_preprocess.py --patients 40 --image-size 128
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from aneurysm.io.images import load_grayscale
from aneurysm.preprocessing import ImageCache, PreprocessConfig, clean_angiogram
from aneurysm.registry import get_adapter
from aneurysm.synth.kium import SynthConfig, write_kium


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--render-size", type=int, default=512)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=0, help="0 = one per core")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_kium(Path(tmp) / "kium", SynthConfig(patients=args.patients, test=0,
                                                          image_size=args.render_size,
                                                          messy=True), progress=False)
        paths = [v.path for r in get_adapter("kium").load(root) for v in r.views if v.path]
        config = PreprocessConfig(image_size=args.image_size)
        t = time.perf_counter()
        for p in paths:
            clean_angiogram(load_grayscale(p), config)
        plain = time.perf_counter() - t
        cache = ImageCache(Path(tmp) / "cache", config)
        t = time.perf_counter()
        cache.warm(paths, workers=args.workers or None, progress=False)
        cold = time.perf_counter() - t
        cache = ImageCache(Path(tmp) / "cache", config)
        t = time.perf_counter()
        cache.warm(paths, workers=args.workers or None, progress=False)
        hot = time.perf_counter() - t
    n = len(paths)
    print(f"{n} images ('messy' sizes 720-1670 px) -> {args.image_size} px")
    print(f"{'pipeline':36} {'seconds':>8} {'images/s':>9}")
    for name, secs in (("plain serial loop (no cache)", plain),
                       ("aneurysm, first run (fills cache)", cold),
                       ("aneurysm, second run (cached)", hot)):
        print(f"{name:36} {secs:8.2f} {n / secs:9.1f}")


if __name__ == "__main__":
    main()
