"""Which head finds aneurysms, and does external pretraining help? Four arms over several seeds.

Arms: the ``global`` and the ``dense`` head, each fine-tuned from scratch and from a checkpoint
pretrained on the pooled synthetic external sources. Per seed, all four arms see the same
synthetic data (K-ium and external, drawn from that seed), the same patient-level folds (every
arm reuses the first arm's splits.json) and the same config; only the head and ``--init`` differ.
Each arm is scored three ways: the pooled out-of-fold CV AUROC at the final epoch (no epoch chosen
on validation), the AUROC on held-out test patients (fold ensemble), and the mean per-location
AUROC on those patients. Pretraining is scored per source on its own held-out validation split.

    python scripts/pretrain_evidence.py --out runs/evidence

Prints the tables (mean ± sd over seeds, paired differences per seed, wall time) and writes them
to OUT/evidence.md and OUT/evidence.json.
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

from aneurysm.config import DataConfig, ExperimentConfig, load_config
from aneurysm.evaluation.official import evaluate_files
from aneurysm.evaluation.report import write_report
from aneurysm.inference.predict import predict_run
from aneurysm.registry import get_adapter
from aneurysm.sources import load_sources
from aneurysm.synth.external import ExternalSynthConfig, write_external
from aneurysm.synth.kium import SynthConfig, write_kium
from aneurysm.training.finetune import finetune
from aneurysm.training.pretrain import CHECKPOINT, pretrain

HEADS = ("global", "dense")
METRICS = ("held_out", "cv_final", "locations")
LABELS = {"held_out": "held-out AUROC", "cv_final": "CV AUROC, final epoch",
          "locations": "mean per-location AUROC, held-out"}


def _arm_config(base: ExperimentConfig, head: str, seed: int, cache: Path) -> ExperimentConfig:
    return dataclasses.replace(
        base, data=DataConfig(cache_dir=str(cache), workers=base.data.workers),
        model=dataclasses.replace(base.model, head=head),
        train=dataclasses.replace(base.train, seed=seed))


def run_seed(out: Path, seed: int, base: ExperimentConfig, args) -> dict:
    """Synthesize this seed's data, pretrain each head, fine-tune the four arms, score them."""
    start = time.time()
    data = out / "data"
    write_kium(data / "kium", SynthConfig(patients=args.kium, test=args.test, seed=seed,
                                          image_size=256), force=True)
    write_external(data, ExternalSynthConfig(rsna=args.rsna, adam=args.adam,
                                             lausanne=args.lausanne, cada=args.cada,
                                             seed=seed + 1000), force=True)
    sources, _ = load_sources(["external"], data)
    kium = get_adapter("kium")
    train, test = kium.load(data / "kium", "train"), kium.load(data / "kium", "test")
    result: dict = {"seed": seed, "arms": {}, "pretrain": {}}
    splits = None
    for head in HEADS:
        config = _arm_config(base, head, seed, out / "cache")
        t0 = time.time()
        scores = pretrain(out / head / "pretrain", sources, config, force=True)
        result["pretrain"][head] = {"minutes": (time.time() - t0) / 60,
                                    "per_source": {s.source: s.auroc for s in scores}}
        for arm, init in (("scratch", None),
                          ("pretrained", str(out / head / "pretrain" / CHECKPOINT))):
            t0 = time.time()
            run = out / head / arm
            finetune(run, train, config, folds=args.folds, init=init, force=True,
                     splits_file=splits)
            splits = splits or str(run / "splits.json")
            report = write_report(run)
            predict_run(run, test, run / "output_prob.csv", locations="prob", force=True)
            held = evaluate_files(data / "kium" / "groundtruth.csv", run / "output_prob.csv")
            locs = [s.auroc for s in held.locations if not math.isnan(s.auroc)]
            result["arms"][f"{head}, {arm}"] = {
                "held_out": held.presence.value, "held_out_ci": [held.presence.low,
                                                                 held.presence.high],
                "cv_final": report.presence_last_epoch.value,
                "locations": float(np.mean(locs)) if locs else math.nan,
                "locations_defined": len(locs), "minutes": (time.time() - t0) / 60}
    result["minutes"] = (time.time() - start) / 60
    return result


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def tables(results: list[dict], args, minutes: float) -> str:
    seeds = [r["seed"] for r in results]
    arms = list(results[0]["arms"])
    lines = [f"Synthetic K-ium: {args.kium} training patients ({args.folds} patient-level "
             f"folds), {args.test} held-out test patients. Synthetic external: RSNA {args.rsna}, "
             f"ADAM {args.adam}, Lausanne {args.lausanne}, CADA {args.cada} cases. Config: "
             f"{args.config or 'built-in defaults'}. Seeds {seeds}: each draws its own data; "
             "within a seed the four arms share data and folds.", "",
             "| arm | " + " | ".join(LABELS[m] for m in METRICS) + " |",
             "|---|" + "---|" * len(METRICS)]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(
            _mean_sd([r["arms"][arm][m] for r in results]) for m in METRICS) + " |")
    lines += ["", "Mean ± sd over seeds.", "", "Paired differences per seed "
              "(held-out AUROC; mean per-location AUROC in brackets):", "",
              "| difference | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
              "|---|" + "---|" * (len(seeds) + 1)]
    pairs = [(f"{h}: pretrained − scratch", f"{h}, pretrained", f"{h}, scratch") for h in HEADS]
    pairs += [("pretrained: dense − global", "dense, pretrained", "global, pretrained"),
              ("scratch: dense − global", "dense, scratch", "global, scratch")]
    for name, a, b in pairs:
        cells, diffs = [], []
        for r in results:
            d = r["arms"][a]["held_out"] - r["arms"][b]["held_out"]
            dl = r["arms"][a]["locations"] - r["arms"][b]["locations"]
            diffs.append(d)
            cells.append(f"{d:+.3f} [{dl:+.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {statistics.mean(diffs):+.3f} |")
    lines += ["", "Held-out AUROC per seed [95% bootstrap CI]:", "",
              "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " |",
              "|---|" + "---|" * len(seeds)]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(
            f"{r['arms'][arm]['held_out']:.3f} [{r['arms'][arm]['held_out_ci'][0]:.3f}, "
            f"{r['arms'][arm]['held_out_ci'][1]:.3f}]" for r in results) + " |")
    sources = sorted(results[0]["pretrain"][HEADS[0]]["per_source"])
    lines += ["", "Pretraining, validation AUROC per source (held out before pooling), mean ± sd "
              "over seeds:", "", "| head | " + " | ".join(sources) + " |",
              "|---|" + "---|" * len(sources)]
    for head in HEADS:
        lines.append(f"| {head} | " + " | ".join(
            _mean_sd([r["pretrain"][head]["per_source"][s] for r in results])
            for s in sources) + " |")
    lines += ["", "n/a: a source without negatives (CADA) has no AUROC.", "",
              f"Wall time: {minutes:.1f} min in all ("
              + ", ".join(f"seed {r['seed']} {r['minutes']:.1f} min" for r in results) + ")."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/evidence")
    ap.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--kium", type=int, default=150, help="synthetic K-ium training patients")
    ap.add_argument("--test", type=int, default=80, help="held-out synthetic test patients")
    ap.add_argument("--rsna", type=int, default=100)
    ap.add_argument("--adam", type=int, default=40)
    ap.add_argument("--lausanne", type=int, default=80)
    ap.add_argument("--cada", type=int, default=20)
    ap.add_argument("--folds", type=int, default=3)
    args = ap.parse_args()

    start = time.time()
    out = Path(args.out)
    base = load_config(args.config)
    results = []
    for seed in args.seeds:
        results.append(run_seed(out / f"seed_{seed}", seed, base, args))
        (out / "evidence.json").write_text(json.dumps(results, indent=1))
        print(f"seed {seed} done in {results[-1]['minutes']:.1f} min", flush=True)
    text = tables(results, args, (time.time() - start) / 60)
    (out / "evidence.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
