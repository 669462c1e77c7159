"""Training overhead, side by side in one process: our training loop against a bare PyTorch loop.

Both train the same model on the same in-memory batch size. The bare loop reuses one
preprocessed float batch and does forward, loss, backward and step, nothing else. Ours runs the real
``train_epoch``: the Dataset and DataLoader over uint8 arrays, the move to the device, batched
augmentation (or none) and the full multi-task loss. Rounds alternate (bare, ours without
augmentation, ours with it), so a machine that slows down mid-run slows all three alike.

Used by ``scripts/benchmark.py`` (the ``training`` section) and ``scripts/profile_training.py``,
so it is a module rather than a script either imports. Timing belongs in those scripts, never
in the tests.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data.arrays import FOOTPRINT_STRIDE, StudyArrays
from ..data.batches import prepare_batch
from ..data.dataset import StudyDataset
from ..model import build_model
from ..model.predict import run_model
from ..preprocessing import ARTERY_UNKNOWN, CELL_UNKNOWN
from ..schema import KIUM_VIEW_NAMES, view_index
from ..training.steps import train_epoch


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


def bare_loop(model, batch, steps: int, precision: str = "fp32") -> float:
    """Seconds for ``steps`` plain steps on one prepared batch (bf16 autocast if asked, as
    ours does)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    device = batch["images"].device
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = run_model(model, batch)
            loss = (F.binary_cross_entropy_with_logits(out["presence"].float(), batch["presence"])
                    + F.binary_cross_entropy_with_logits(out["locations"].float(),
                                                         batch["locations"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(batch["images"].device)
    return time.perf_counter() - start


def study_loader(arrays, batch_size: int, device, workers: int = 0) -> DataLoader:
    """A shuffling loader as ``train_fold`` builds it: pinned on a GPU, and with ``workers``
    processes. ``train_fold`` starts them once per epoch; here they are kept, so their start is
    not timed (it is once per epoch of many steps there, once per 10 steps here)."""
    return DataLoader(StudyDataset(arrays), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(0), num_workers=workers,
                      persistent_workers=workers > 0,
                      pin_memory=torch.device(device).type == "cuda")


def our_loop(model, loader, config, augment, steps: int, device) -> float:
    """Seconds for ``steps`` steps of the real ``train_epoch`` over ``loader``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator(device=device).manual_seed(0)
    start = time.perf_counter()
    train_epoch(model, itertools.islice(loader, steps), optimizer, config.train, augment,
                generator, device)
    _sync(device)
    return time.perf_counter() - start


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure_training(config, device, batch_size: int, steps: int, rounds: int,
                     projected: bool = False, loader_workers: int = 0) -> dict:
    """Views/s of the bare loop and of ours without and with augmentation, in alternating
    rounds, and each round's ratio to the bare loop; with ``loader_workers`` also ours with
    augmentation and that many loader processes."""
    size, n_views = config.preprocess.image_size, len(KIUM_VIEW_NAMES)
    arrays = synthetic_arrays(max(4 * batch_size, batch_size * steps), size, projected=projected)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                   batch_size=batch_size))
    torch.manual_seed(0)
    model = build_model(config.model).to(device)
    fixed = prepare_batch({k: torch.as_tensor(getattr(arrays, k)[:batch_size]).to(device)
                           for k in ("images", "view_ids", "view_mask", "presence",
                                     "locations")})
    off = dataclasses.replace(config.augment, enabled=False)
    loader = study_loader(arrays, batch_size, device)
    arms = {"bare PyTorch loop": lambda: bare_loop(model, fixed, steps, config.train.precision),
            "ours, no augmentation": lambda: our_loop(model, loader, config, off, steps, device),
            "ours, with augmentation": lambda: our_loop(model, loader, config, config.augment,
                                                        steps, device)}
    if loader_workers:
        workers = study_loader(arrays, batch_size, device, loader_workers)
        arms[f"ours, augmentation, {loader_workers} workers"] = lambda: our_loop(
            model, workers, config, config.augment, steps, device)
    flops = step_flops(model, fixed, config.train.precision)
    for run in arms.values():  # warm-up: allocator, kernels, thread pools
        run()
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, run in arms.items():
            seconds[name].append(run())
    views = steps * batch_size * n_views
    rate = {name: [views / s for s in times] for name, times in seconds.items()}
    bare = rate["bare PyTorch loop"]
    return {
        "setting": {"model": config.model.name, "image_size": size, "projected": projected,
                    "precision": config.train.precision,
                    "batch": f"{batch_size} patients x {n_views} views",
                    "steps_per_round": steps, "rounds": rounds,
                    "loader_workers": loader_workers},
        "views_per_second": rate,
        "flops_per_step": flops,
        "tflops_per_second": {name: [flops * steps / s / 1e12 for s in times]
                              for name, times in seconds.items()},
        "ratio_to_bare_per_round": {name: [r / b for r, b in zip(rates, bare)]
                                    for name, rates in rate.items()},
    }


def step_flops(model, batch, precision: str) -> float:
    """Floating-point operations of one forward and backward pass (torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    device = batch["images"].device
    with counter, torch.autocast(device.type, dtype=torch.bfloat16,
                                 enabled=precision == "bf16"):
        out = run_model(model, batch)
        (out["presence"].float().sum() + out["locations"].float().sum()).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def print_training(result: dict, peak_tflops: float | None = None) -> None:
    st = result["setting"]
    print(f"\ntraining overhead: {st['model']} model, {st['image_size']} px, {st['batch']} per "
          f"step, {st['rounds']} alternating rounds of {st['steps_per_round']} steps"
          + (", projected studies" if st["projected"] else ""))
    print(f"  {'loop':34s} {'views/s (median, range)':>28s} {'ratio to bare (range)':>24s}")
    for name, rates in result["views_per_second"].items():
        ratios = result["ratio_to_bare_per_round"][name]
        print(f"  {name:34s} {statistics.median(rates):10.1f} ({min(rates):6.1f}-"
              f"{max(rates):6.1f}) {statistics.median(ratios):12.2f} ({min(ratios):.2f}-"
              f"{max(ratios):.2f})")
    ours = statistics.median(result["tflops_per_second"]["ours, with augmentation"])
    line = (f"  {result['flops_per_step'] / 1e9:.1f} GFLOP per step; ours with augmentation "
            f"reaches {ours:.3f} TFLOP/s")
    if peak_tflops:
        line += f" = {100 * ours / peak_tflops:.1f}% of the {peak_tflops:g} TFLOP/s peak"
    print(line)
