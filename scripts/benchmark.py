"""Training throughput, side by side in one process: our training loop against a bare PyTorch loop.

Both train the same model on the same in-memory batch size. The bare loop reuses one
preprocessed float batch and does forward, loss, backward and step, nothing else. Ours runs the real
``train_epoch``: the Dataset and DataLoader over uint8 arrays, the move to the device, batched
augmentation (or none) and the full multi-task loss. Rounds alternate (bare, ours without
augmentation, ours with it), so a machine that slows down mid-run slows all three alike.

    python scripts/benchmark.py                      # CPU defaults: dense head, 128 px
    python scripts/benchmark.py --image-size 256 --head global --device cuda

Prints a table and writes JSON (``--json``). Timing belongs here, never in the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from aneurysm.config import load_config
from aneurysm.model import build_model
from aneurysm.preprocessing import ARTERY_UNKNOWN, CELL_UNKNOWN
from aneurysm.schema import KIUM_VIEW_NAMES, view_index
from aneurysm.training.arrays import FOOTPRINT_STRIDE, StudyArrays
from aneurysm.training.augment import prepare_batch
from aneurysm.training.dataset import StudyDataset
from aneurysm.training.loop import resolve_device, train_epoch


def synthetic_arrays(n: int, size: int, seed: int = 0, projected: bool = False) -> StudyArrays:
    """K-ium-shaped arrays with random pixels: throughput does not depend on the content.
    ``projected``: every study is a projected external one, as in pretraining, so augmentation
    also re-renders it (domain randomisation)."""
    rng = np.random.default_rng(seed)
    v, grid = len(KIUM_VIEW_NAMES), size // FOOTPRINT_STRIDE
    return StudyArrays(
        study_ids=[str(i) for i in range(n)], patient_ids=[str(i) for i in range(n)],
        images=rng.integers(0, 256, (n, v, size, size), dtype=np.uint8),
        view_ids=np.tile([view_index(x) for x in KIUM_VIEW_NAMES], (n, 1)),
        view_mask=np.ones((n, v), bool), presence=(rng.random(n) < 0.5).astype(np.float32),
        presence_known=np.ones(n, bool), locations=np.zeros((n, 21), np.float32),
        location_known=np.ones((n, 21), bool), group_members=np.zeros((n, 0, 21), np.float32),
        group_targets=np.zeros((n, 0), np.float32), group_valid=np.zeros((n, 0), bool),
        footprints=np.full((n, v, grid, grid), CELL_UNKNOWN, np.uint8),
        arteries=np.full((n, v, grid, grid), ARTERY_UNKNOWN, np.uint8),
        projected=np.full(n, projected, bool))


def bare_loop(model, batch, steps: int) -> float:
    """Seconds for ``steps`` plain steps on one prepared batch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        out = model(batch["images"], batch["view_ids"], batch["view_mask"])
        loss = (F.binary_cross_entropy_with_logits(out["presence"], batch["presence"])
                + F.binary_cross_entropy_with_logits(out["locations"], batch["locations"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(batch["images"].device)
    return time.perf_counter() - start


def our_loop(model, arrays, config, augment, steps: int, device) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = DataLoader(StudyDataset(arrays), batch_size=config.train.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    generator = torch.Generator(device=device).manual_seed(0)
    start = time.perf_counter()
    train_epoch(model, itertools.islice(loader, steps), optimizer, config.train, augment,
                generator, device)
    _sync(device)
    return time.perf_counter() - start


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    ap.add_argument("--head", default=None, choices=("dense", "global"))
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8, help="patients per step (8 views each)")
    ap.add_argument("--steps", type=int, default=12, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--json", default="runs/benchmark.json")
    ap.add_argument("--projected", action="store_true",
                    help="projected external studies, as in pretraining (domain randomisation on)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config, {"model": {"head": args.head},
                                       "preprocess": {"image_size": args.image_size},
                                       "train": {"batch_size": args.batch_size}})
    device = resolve_device(args.device)
    size, n_views = config.preprocess.image_size, len(KIUM_VIEW_NAMES)
    arrays = synthetic_arrays(max(4 * args.batch_size, args.batch_size * args.steps), size,
                              projected=args.projected)
    torch.manual_seed(0)
    model = build_model(config.model).to(device)
    fixed = prepare_batch({k: torch.as_tensor(getattr(arrays, k)[:args.batch_size]).to(device)
                           for k in ("images", "view_ids", "view_mask", "presence",
                                     "locations")})
    off = dataclasses.replace(config.augment, enabled=False)
    arms = {"bare PyTorch loop": lambda: bare_loop(model, fixed, args.steps),
            "ours, no augmentation": lambda: our_loop(model, arrays, config, off, args.steps,
                                                      device),
            "ours, with augmentation": lambda: our_loop(model, arrays, config, config.augment,
                                                        args.steps, device)}
    for run in arms.values():  # warm-up: allocator, kernels, thread pools
        run()
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, run in arms.items():
            seconds[name].append(run())
    views = args.steps * args.batch_size * n_views
    rate = {name: [views / s for s in times] for name, times in seconds.items()}
    bare = rate["bare PyTorch loop"]
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": str(device)},
        "setting": {"head": config.model.head, "image_size": size,
                    "batch": f"{args.batch_size} patients x {n_views} views",
                    "steps_per_round": args.steps, "rounds": args.rounds},
        "views_per_second": rate,
        "ratio_to_bare_per_round": {name: [r / b for r, b in zip(rates, bare)]
                                    for name, rates in rate.items()},
    }
    print(f"training throughput, {config.model.head} head, {size} px, {args.batch_size} patients "
          f"x {n_views} views per step, {args.rounds} alternating rounds of {args.steps} steps, "
          f"{device}, {torch.get_num_threads()} threads")
    print(f"{'loop':28s} {'views/s (median, range)':>28s} {'ratio to bare (range)':>24s}")
    for name, rates in rate.items():
        ratios = result["ratio_to_bare_per_round"][name]
        print(f"{name:28s} {statistics.median(rates):10.1f} ({min(rates):6.1f}-{max(rates):6.1f})"
              f" {statistics.median(ratios):12.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
