"""Where a training step's time goes: the bare loop against ours, under torch's profiler.

For each loop it prints the wall time per step, the device's busy time per step (the sum of
its kernels; on a CPU, the operators' self time) and the operators that cost most. If ours
keeps the device busy as long as its wall time, the gap to the bare loop is extra work
(augmentation, the full loss); if not, the device waits on the host (syncs, the loader).

  python scripts/profile_training.py --config configs/gpu-resnet50.yaml --device cuda \
    --precision bf16 --batch-size 8 --steps 8

Timing and profiling belong in scripts, never in the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from aneurysm.bench.training import bare_loop, our_loop, study_loader, synthetic_arrays
from aneurysm.config import load_config
from aneurysm.data.batches import prepare_batch
from aneurysm.model import build_model
from aneurysm.model.predict import resolve_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default=None, choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8, help="patients per step (8 views)")
    ap.add_argument("--steps", type=int, default=8, help="profiled steps per loop")
    ap.add_argument("--workers", type=int, default=0, help="loader processes for ours")
    ap.add_argument("--projected", action="store_true", help="projected studies (pretraining)")
    ap.add_argument("--top", type=int, default=15, help="operators listed per loop")
    args = ap.parse_args()
    config = load_config(args.config, {"preprocess": {"image_size": args.image_size},
                                       "train": {"precision": args.precision,
                                                 "device": args.device,
                                                 "batch_size": args.batch_size}})
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    arrays = synthetic_arrays(args.batch_size * (args.steps + 2),
                              config.preprocess.image_size, projected=args.projected)
    torch.manual_seed(0)
    model = build_model(config.model).to(device)
    fixed = prepare_batch({k: torch.as_tensor(getattr(arrays, k)[:args.batch_size]).to(device)
                           for k in ("images", "view_ids", "view_mask", "presence",
                                     "locations")})
    off = dataclasses.replace(config.augment, enabled=False)
    loader = study_loader(arrays, args.batch_size, device, args.workers)
    loops = {
        "bare PyTorch loop": lambda n: bare_loop(model, fixed, n, config.train.precision),
        "ours, no augmentation": lambda n: our_loop(model, loader, config, off, n, device),
        "ours, with augmentation": lambda n: our_loop(model, loader, config, config.augment,
                                                      n, device)}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(f"{config.model.name} model, {config.preprocess.image_size} px, {args.batch_size} "
          f"patients x 8 views, {config.train.precision}, {device}, loader workers "
          f"{args.workers}, {args.steps} steps per loop")
    for name, run in loops.items():
        run(2)  # warm-up
        start = time.perf_counter()
        with profile(activities=activities) as prof:
            run(args.steps)
        wall = (time.perf_counter() - start) / args.steps
        events = prof.key_averages()
        if cuda:  # the kernels themselves (operator rows would count them twice)
            busy = sum(e.self_device_time_total for e in events
                       if e.device_type == DeviceType.CUDA) / 1e6 / args.steps
        else:
            busy = sum(e.self_cpu_time_total for e in events) / 1e6 / args.steps
        print(f"\n== {name}: {1000 * wall:.1f} ms per step (profiled), device busy "
              f"{1000 * busy:.1f} ms per step ({100 * busy / wall:.0f}%)")
        print(events.table(sort_by=sort, row_limit=args.top, max_name_column_width=48))
        if cuda and name != "bare PyTorch loop":  # the host side: what keeps the device waiting
            print(events.table(sort_by="self_cpu_time_total", row_limit=args.top,
                               max_name_column_width=48))


if __name__ == "__main__":
    main()
