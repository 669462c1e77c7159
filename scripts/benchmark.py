"""Speed and memory, measured side by side in one run: a table on the terminal and JSON on disk.

Sections (``--only`` picks some; all by default):

- ``training``: our training loop against a bare PyTorch loop, same model, batch and in-memory
  data, augmentation off and on (target: >= 0.9x with augmentation);
- ``loader``: studies/s cold (JPEG -> cache), warm (cache -> arrays) and as augmented device
  batches, against the model's consumption (target: >= 3x);
- ``memory``: peak RSS of ``finetune`` at N and ``--scale`` x N patients (target: within 15%;
  with a second look, ``preprocess.fine_size`` views stay on disk);
- ``io``: a 512 x 512 x 300 DICOM series, ours against bare pydicom, and its projection;
- ``inference``: per-patient latency of ``predict`` with every fold ensembled, torch against
  the ONNX export's stand-alone predictor (onnxruntime), from the same JPEGs.

    python scripts/benchmark.py                     # CPU defaults, about 10 minutes on 2 cores
    python scripts/benchmark.py --device cuda --config configs/gpu.yaml --precision bf16

Synthetic inputs are written once under ``--work`` and reused. Timing belongs here, never in
the tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from aneurysm.bench.pipeline import (kium_root, measure_inference, measure_io, measure_loader,
                                     measure_memory)
from aneurysm.bench.training import measure_training, print_training
from aneurysm.config import config_to_dict, load_config
from aneurysm.model.predict import resolve_device

SECTIONS = ("training", "loader", "memory", "io", "inference")


def _med(values) -> float:
    return statistics.median(values) if isinstance(values, list) else values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    ap.add_argument("--model", default=None, choices=("dense", "global"),
                    help="model.name (default: the config's)")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--precision", default=None, choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--batch-size", type=int, default=8, help="patients per step (8 views each)")
    ap.add_argument("--steps", type=int, default=12, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--projected", action="store_true",
                    help="training: projected external studies, as in pretraining")
    ap.add_argument("--loader-workers", type=int, default=0,
                    help="training: also time ours with augmentation and N loader processes")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections out of {','.join(SECTIONS)}")
    ap.add_argument("--patients", type=int, default=16,
                    help="N for the memory section (also runs scale x N); the loader reads "
                         "scale x N")
    ap.add_argument("--scale", type=int, default=5, help="the memory section's larger run, "
                    "in multiples of --patients (200 -> 1000 at the default)")
    ap.add_argument("--source-size", type=int, default=512, help="synthetic JPEG size, px")
    ap.add_argument("--dicom-shape", default="512,512,300",
                    help="rows,columns,slices of the io section's DICOM series")
    ap.add_argument("--work", default="runs/benchmark-work", help="synthetic inputs, reused")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="the device's peak at this precision, to print the fraction reached "
                         "(e.g. 989 for an H100 SXM in dense bf16)")
    ap.add_argument("--json", default="runs/benchmark.json")
    args = ap.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        sys.exit(f"--only: unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cache_dir = tempfile.mkdtemp(prefix="cache-", dir=work)  # cold for every invocation
    config = load_config(args.config, {"model": {"name": args.model},
                                       "preprocess": {"image_size": args.image_size},
                                       "train": {"precision": args.precision,
                                                 "device": args.device},
                                       "data": {"cache_dir": cache_dir, "workers": 0}})
    device = resolve_device(args.device)
    result: dict = {"machine": {
        "platform": platform.platform(), "processor": platform.processor() or "unknown",
        "cpus": torch.get_num_threads(), "torch": torch.__version__, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
        "command": " ".join(sys.argv), "sections": {}}
    started = time.perf_counter()
    consumption = None
    if "training" in sections:
        tr = measure_training(config, device, args.batch_size, args.steps, args.rounds,
                              args.projected, args.loader_workers)
        result["sections"]["training"] = tr
        print_training(tr, args.peak_tflops)
        if args.peak_tflops:
            tr["peak_tflops"] = args.peak_tflops
        consumption = _med(tr["views_per_second"]["ours, with augmentation"]) / 8
    needs_kium = {"loader", "memory", "inference"} & set(sections)
    root = kium_root(work, args.scale * args.patients, args.patients, args.source_size) \
        if needs_kium else None
    if "loader" in sections:
        ld = measure_loader(config, root, device, consumption)
        result["sections"]["loader"] = ld
        print(f"\nloader: {ld['studies']} studies of 8 JPEGs ({args.source_size} px) -> "
              f"{ld['image_size']} px")
        print(f"  cold (decode + clean + cache)     {ld['cold_studies_per_s']:8.1f} studies/s")
        print(f"  warm (cache -> arrays, per run)   {ld['warm_studies_per_s']:8.1f} studies/s")
        print(f"  arrays held in memory             {ld['arrays_bytes_per_study'] / 1024:8.0f} "
              f"KB per study")
        print(f"  per step (arrays -> augmented)    "
              f"{ld['augmented_batches_studies_per_s']:8.1f} studies/s")
        if consumption:
            print(f"  model consumes                    {consumption:8.1f} studies/s -> "
                  f"headroom {ld['headroom']:.1f}x (target >= 3x)")
    run_for_inference = None
    if "memory" in sections or "inference" in sections:
        cfg_path = work / "bench-finetune.yaml"
        small = config_to_dict(config)
        small["train"].update(epochs=1, device=args.device)
        cfg_path.write_text(yaml.safe_dump(small))
        for old in work.glob("mem-*"):
            shutil.rmtree(old)
        mem = measure_memory(root, args.patients, work, cfg_path, args.scale)
        run_for_inference = work / f"mem-{args.patients}"
        if "memory" in sections:
            result["sections"]["memory"] = mem
            (n, a), (n4, b) = sorted(mem["peak_rss_mb"].items(), key=lambda kv: int(kv[0]))
            print("\nmemory: peak RSS of a 2-fold, 1-epoch finetune (fresh processes)")
            print(f"  {n:>4} patients {a:8.0f} MB | {n4:>4} patients {b:8.0f} MB | growth "
                  f"{100 * mem['growth']:+.1f}% (target within 15%); cache-filling "
                  f"workers peak {max(mem['loader_workers_peak_rss_mb'].values()):.0f} MB")
    if "io" in sections:
        io = measure_io(work, args.rounds, tuple(int(x) for x in args.dicom_shape.split(",")))
        result["sections"]["io"] = io
        print(f"\nio: DICOM series {'x'.join(map(str, io['shape']))}, single-frame slices")
        print(f"  ours (load_dicom_series)  {_med(io['ours_read_s']):6.2f} s | bare pydicom "
              f"{_med(io['bare_pydicom_read_s']):6.2f} s | bare/ours {io['read_ratio']:.2f}")
        print(f"  angiographic projection (DRR, 8 views) {_med(io['projection_s']):6.2f} s -> "
              f"{io['projection_volumes_per_s']:.2f} volumes/s per process")
    if "inference" in sections:
        inf = measure_inference(run_for_inference, root, args.rounds)
        result["sections"]["inference"] = inf
        print(f"\ninference: predict, {inf['folds_ensembled']} folds ensembled, "
              f"{inf['patients']} patients")
        print(f"  torch, cold (JPEGs not cached) {1000 * inf['cold_s_per_patient']:7.1f} "
              f"ms/patient | warm {1000 * _med(inf['warm_s_per_patient']):7.1f} ms/patient")
        if "onnxruntime_s_per_patient" in inf:
            print(f"  onnxruntime, exported predict.py (from JPEGs every time) "
                  f"{1000 * _med(inf['onnxruntime_s_per_patient']):7.1f} ms/patient "
                  f"(export took {inf['export_s']:.0f} s)")
    if device.type == "cuda":
        result["machine"]["gpu_peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        print(f"\npeak GPU memory (this process): "
              f"{result['machine']['gpu_peak_memory_gib']:.1f} GiB")
    shutil.rmtree(cache_dir, ignore_errors=True)
    result["wall_s"] = time.perf_counter() - started
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\n{result['wall_s'] / 60:.1f} min; written: {out}")


if __name__ == "__main__":
    main()
