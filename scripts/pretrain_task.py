"""Does pretraining learn its own task, and what limits it? Arms pretrained side by side.

Pretraining's task is presence per projected external volume (eight angiographic views drawn from
a 3-D scan, footprints where the source says where the aneurysm is). This script pretrains arms
that differ in one setting each (amount of data, epochs, width, depth, resolution, domain
randomisation) on the same synthetic external sources per seed. It scores each on a validation
split held out per source before pooling, larger than the default one, so that a source's AUROC
is not read off a handful of cases. It reports per arm:

- the validation AUROC per source that has negatives (ADAM, Lausanne, RSNA);
- the training AUROC of the last epoch (underfitting or overfitting?);
- localisation: the share of validation views showing an aneurysm whose map peaks on it;
- the wall time of pretraining.

    python scripts/pretrain_task.py                 # default, half the data, 60 epochs; seeds 0-2
    python scripts/pretrain_task.py --arms "256 px, unshuffled to 128" --seeds 0
    python scripts/pretrain_task.py --arms "3 poses" "60 epochs"   # new angles, or more epochs?
    python scripts/pretrain_task.py --out runs/pretrain-task-3x --rsna 450 --adam 240 \
        --lausanne 360 --cada 60 --topcow 30 --arms "a third of the external data"
    python scripts/pretrain_task.py --out runs/pretrain-task-fine --spacing 0.75 \
        --arms default "256 px, unshuffled to 128"    # do finer views hold more?

Prints mean ± sd over seeds and the paired difference arm − baseline (``--baseline``, default
"default") per seed. After every arm it writes OUT/seed_S.json and OUT/pretrain_task.md, the
tables over every seed in OUT, so seeds can run as parallel processes on one machine. Arms that
OUT/seed_S.json already holds are kept, not rerun (``--rerun`` runs them again), so a killed run
resumes and a later call adds arms to the same seeds and data; ``--report`` prints the tables
of what OUT holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from aneurysm.config import load_config, with_overrides
from aneurysm.io.atomic import atomic_write_text
from aneurysm.model.checkpoint import load_model
from aneurysm.model.losses import on_map_grid
from aneurysm.preprocessing import ImageCache
from aneurysm.schema import load_manifest
from aneurysm.sources import load_sources
from aneurysm.synth.external import ExternalSynthConfig, write_external
from aneurysm.training.arrays import build_arrays, footprint_stride
from aneurysm.training.pretrain import CHECKPOINT, pretrain
from aneurysm.training.steps import iter_outputs, resolve_device
from pretrain_evidence import mean_sd  # scripts/ is on the path of a script run from it

SOURCES = ("adam", "lausanne", "rsna2025")  # the sources with negatives
_WIDTH_32 = {"model": {"width": 32, "decoder_channels": [128, 64, 32]}}
_TWO_BLOCKS = {"model": {"encoder_layers": [2, 2, 2, 2]}}
#: {section: {key: value}} on the config; "share": train on that share of each source's training
#: patients, validation unchanged (a learning curve)
ARMS: dict[str, dict] = {
    "default": {},
    "half the external data": {"share": 0.5},
    "60 epochs": {"train": {"pretrain_epochs": 60}},
    # with --rsna 450 --adam 240 --lausanne 360 (three times the default draw) a third of the
    # training cases is the default's amount: data x epochs on one validation split
    "a third of the external data": {"share": 1 / 3},
    "a third, 60 epochs": {"share": 1 / 3, "train": {"pretrain_epochs": 60}},
    # optimisation at the default's amount of data; compare with --baseline "a third of ..."
    "a third, BCE map loss": {"share": 1 / 3, "train": {"map_focal_gamma": 0.0}},
    "a third, lr 0.005": {"share": 1 / 3, "train": {"lr": 0.005}},
    # is re-rendering (attenuation, blur up to 1 px, residue) what keeps the training task hard?
    "a third, no domain randomisation": {"share": 1 / 3,
                                         "augment": {"projections": {"enabled": False}}},
    # resolution: a fourth decoder block, so the map is drawn at stride 2 (64 x 64 at 128 px)
    "a third, map at stride 2": {"share": 1 / 3, "model": {"decoder_channels": [64, 32, 16, 16]}},
    # capacity: the default encoder underfits (training AUROC ~ validation AUROC)
    "a third, width 32": {"share": 1 / 3, **_WIDTH_32},
    "a third, 2 blocks per stage": {"share": 1 / 3, **_TWO_BLOCKS},
    "200 epochs": {"train": {"pretrain_epochs": 200}},
    "width 32": _WIDTH_32,
    "2 blocks per stage": _TWO_BLOCKS,
    "256 px": {"preprocess": {"image_size": 256}},
    "256 px, unshuffled to 128": {"preprocess": {"image_size": 256},
                                  "model": {"stem_unshuffle": 2}},
    "no domain randomisation": {"augment": {"projections": {"enabled": False}}},
    "256 px, width 32": {"preprocess": {"image_size": 256}, **_WIDTH_32},
    # new views of the same lesions: each training volume also projected at two other C-arm
    # angulations (up to 15 degrees); as many steps as "60 epochs", which repeats the same views
    "3 poses": {"projection": {"poses": 3}},
    "3 poses, 7 epochs": {"projection": {"poses": 3}, "train": {"pretrain_epochs": 7}},  # the
    # default's steps (21 epochs' worth): do new angles beat more passes at the same cost?
    # the map loss's divisor: a batch with no aneurysm cell divides by 1 (CenterNet), so its
    # hard background weighs as many times more as a batch with lesions has aneurysm cells; a
    # floor of N per known view evens the steps out
    "map loss floor 1": {"train": {"map_loss_floor": 1.0}},
    "map loss floor 4": {"train": {"map_loss_floor": 4.0}},
    # small aneurysms are at chance: every view's aneurysm cells get one share of the weight,
    # so a one-cell aneurysm (radius < 2 mm) counts as much as a nine-cell one
    "lesion-balanced map loss": {"train": {"map_loss_balance": True}},
    # a multi-view cue: each view's pooling also reads its biplane partner's rows (a 3-D lesion
    # responds in the same rows of the frontal and the lateral view; a crossing does not)
    "biplane rows": {"model": {"cross_view": "biplane"}},
    "biplane rows, band 1": {"model": {"cross_view": "biplane", "cross_view_band": 1}},
    # a study's presence as the clearest view's (a smooth maximum) rather than a noisy-OR
    "max over views": {"model": {"view_pool": "max"}},
    # validate, keep and transfer a running average of the weights (~100 or ~200 steps, about
    # 1.5 or 3 epochs of the default's 64 steps) instead of the last step's
    "EMA 0.99": {"train": {"ema_decay": 0.99}},
    "EMA 0.995": {"train": {"ema_decay": 0.995}},
}


#: the arms a plain run compares: is the task limited by data, or by optimisation?
STUDY = ("default", "half the external data", "60 epochs")


def _config(base, overrides: dict, seed: int, cache: Path, device: str):
    run = {"data": {"cache_dir": str(cache)},
           "train": {"seed": seed, **({"device": device} if device else {})}}
    config = with_overrides(base, {k: v for k, v in overrides.items() if k != "share"})
    return with_overrides(config, run)


def localisation(run: Path, config) -> float:
    """Share of validation views with an aneurysm footprint whose map peaks on it (or on the
    ring of unknown cells around it)."""
    splits = json.loads((run / "splits.json").read_text())
    val_ids = {s for v in splits.values() for s in v["val"]}
    records = [r for r in load_manifest(run / "records.json") if r.study_id in val_ids]
    arrays, _, _ = build_arrays(records, ImageCache(config.data.cache_dir, config.preprocess),
                                progress=False,
                                footprint_stride=footprint_stride(config.model.map_stride))
    device = resolve_device(config.train.device)
    model = load_model(run / CHECKPOINT, config.model, device)
    hits = []
    for batch, out in iter_outputs(model, arrays, config.train, device):
        target, weight = on_map_grid(batch["map_target"], batch["map_weight"],
                                     out["maps"].shape[-2:])  # stride 8 when unshuffled
        maps, target, weight = out["maps"].flatten(2), target.flatten(2), weight.flatten(2)
        peak = maps.argmax(-1, keepdim=True)
        shown = (target.amax(-1) > 0.5) & batch["view_mask"]
        on = (target.gather(-1, peak) > 0.5) | (weight.gather(-1, peak) == 0)
        hits += on[..., 0][shown].tolist()
    return float(np.mean(hits)) if hits else math.nan


def run_arm(out: Path, data: Path, name: str, seed: int, base, args) -> dict:
    config = _config(base, ARMS[name], seed, out / f"seed_{seed}" / "cache", args.device)
    sources, _ = load_sources(["external"], data)
    run = out / f"seed_{seed}" / name.replace(" ", "_")
    start = time.time()
    scores = pretrain(run, sources, config, val_fraction=args.val_fraction, force=True,
                      progress=False, train_share=ARMS[name].get("share", 1.0))
    minutes = (time.time() - start) / 60
    history = pd.read_csv(run / "history.csv")
    return {"seed": seed, "arm": name, "minutes": minutes,
            "per_source": {str(s.source): s.auroc for s in scores if s.source in SOURCES},
            "val_cases": {str(s.source): [s.val, s.val_positive] for s in scores},
            "train_auroc": float(history["train_auroc"].iloc[-1]),
            "localisation": localisation(run, config)}


def _check_draw(marker: Path, synth: ExternalSynthConfig) -> None:
    """A seed folder keeps its arms, so it must keep its draw: refuse other source counts or
    another voxel size rather than pair arms trained on different data. (An empty marker
    predates this check.)"""
    drawn = json.dumps(dataclasses.asdict(synth), sort_keys=True)
    before = marker.read_text() if marker.is_file() else ""
    if before and before != drawn:
        raise SystemExit(f"{marker.parent}: drawn with {before}, not {drawn}; "
                         "use another --out")
    atomic_write_text(marker, drawn)


def load_results(out: Path) -> list[dict]:
    return [r for path in sorted(out.glob("seed_*.json")) for r in json.loads(path.read_text())]


def tables(results: list[dict], args) -> str:
    base = args.baseline
    arms = [a for a in ARMS if any(r["arm"] == a for r in results)]
    arms = [base] + [a for a in arms if a != base] if base in arms else arms
    seeds = sorted({r["seed"] for r in results})
    get = {(r["arm"], r["seed"]): r for r in results}
    cases = next(iter(results))["val_cases"]
    lines = [f"Synthetic external sources per seed: RSNA {args.rsna}, ADAM {args.adam}, Lausanne "
             f"{args.lausanne}, CADA {args.cada}, TopCoW {args.topcow} patients, "
             f"{args.spacing} mm voxels; validation "
             f"fraction {args.val_fraction} per source (seed {seeds[0]}: "
             + ", ".join(f"{s} {n} cases, {p} positive" for s, (n, p) in sorted(cases.items())
                         if s in SOURCES) + f"). Config: {args.config or 'built-in defaults'}.",
             "", "| arm | " + " | ".join(f"{s} val AUROC" for s in SOURCES)
             + " | train AUROC, last epoch | map peaks on the aneurysm | minutes |",
             "|---|" + "---|" * (len(SOURCES) + 3)]
    for arm in arms:
        rows = [get[(arm, s)] for s in seeds if (arm, s) in get]
        lines.append(f"| {arm} | " + " | ".join(
            mean_sd([r["per_source"].get(s, math.nan) for r in rows]) for s in SOURCES)
            + f" | {mean_sd([r['train_auroc'] for r in rows])} | "
            f"{mean_sd([r['localisation'] for r in rows])} | "
            f"{statistics.mean(r['minutes'] for r in rows):.1f} |")
    lines += ["", f"Mean ± sd over seeds {seeds}.", "",
              f"Paired differences arm − {base} per seed, mean validation AUROC over "
              f"{', '.join(SOURCES)}:", "",
              "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
              "|---|" + "---|" * (len(seeds) + 1)]
    for arm in arms[1:]:
        diffs = []
        for s in seeds:
            if (arm, s) in get and (base, s) in get:
                a, b = (np.nanmean([get[(x, s)]["per_source"].get(k, math.nan) for k in SOURCES])
                        for x in (arm, base))
                diffs.append(float(a - b))
            else:
                diffs.append(math.nan)
        lines.append(f"| {arm} | " + " | ".join(f"{d:+.3f}" for d in diffs)
                     + f" | {np.nanmean(diffs):+.3f} |")
    lines += ["", "Pretraining minutes per seed, all its arms (an arm's first run also projects "
              "the volumes): " + ", ".join(f"seed {s} {_seed_minutes(results, s):.1f} min"
                                           for s in seeds) + "."]
    return "\n".join(lines)


def _seed_minutes(results: list[dict], seed: int) -> float:
    return sum(r["minutes"] for r in results if r["seed"] == seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", nargs="+", default=list(STUDY), choices=list(ARMS), metavar="ARM",
                    help=f"any of: {'; '.join(ARMS)} (default: {'; '.join(STUDY)}); "
                         "the baseline always runs")
    ap.add_argument("--baseline", default="default", choices=list(ARMS), metavar="ARM",
                    help="the arm the others are paired with (default: default)")
    ap.add_argument("--rerun", action="store_true",
                    help="run arms again that OUT/seed_S.json already holds (default: keep them)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/pretrain-task")
    ap.add_argument("--config", default=None)
    ap.add_argument("--device", default="", help="override train.device (cpu, cuda)")
    ap.add_argument("--val-fraction", type=float, default=0.35)
    ap.add_argument("--rsna", type=int, default=150)
    ap.add_argument("--adam", type=int, default=80)
    ap.add_argument("--lausanne", type=int, default=120)
    ap.add_argument("--cada", type=int, default=20)
    ap.add_argument("--topcow", type=int, default=10)
    ap.add_argument("--spacing", type=float, default=ExternalSynthConfig.spacing,
                    help="voxel size of the synthesized volumes, mm (default %(default)s)")
    ap.add_argument("--report", action="store_true", help="only print the tables of OUT")
    args = ap.parse_args()
    out = Path(args.out)
    if args.report:
        results = load_results(out) if out.is_dir() else []
        if not results:
            raise SystemExit(f"{out}: no results (seed_*.json) to report")
        print(tables(results, args))
        return
    if args.baseline not in args.arms:
        args.arms.insert(0, args.baseline)
    out.mkdir(parents=True, exist_ok=True)
    base = load_config(args.config)
    for seed in args.seeds:
        data = out / f"seed_{seed}" / "data"
        synth = ExternalSynthConfig(rsna=args.rsna, adam=args.adam, lausanne=args.lausanne,
                                    cada=args.cada, topcow=args.topcow, seed=seed + 1000,
                                    spacing=args.spacing)
        if not (data / ".done").is_file():
            write_external(data, synth, force=True, progress=False)
        _check_draw(data / ".done", synth)
        path = out / f"seed_{seed}.json"
        results = json.loads(path.read_text()) if path.is_file() else []
        done = {r["arm"] for r in results}
        for arm in args.arms:
            if arm in done and not args.rerun:
                print(f"seed {seed}, {arm}: kept from {path}", flush=True)
                continue
            results = [r for r in results if r["arm"] != arm]
            results.append(run_arm(out, data, arm, seed, base, args))
            path.write_text(json.dumps(results, indent=1))
            (out / "pretrain_task.md").write_text(tables(load_results(out), args) + "\n")
            print(f"seed {seed}, {arm}: {results[-1]}", flush=True)
    print(tables(load_results(out), args))


if __name__ == "__main__":
    main()
