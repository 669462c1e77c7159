"""Evidence for the model's defaults: arms fine-tuned side by side over several seeds.

Seven studies, each a set of arms:
- ``--study heads``: the ``global`` and the ``dense`` head, each from scratch and pretrained on
  the pooled synthetic external sources. Which head finds aneurysms; does pretraining help?
- ``--study projection``: the dense head from scratch, and pretrained on external views drawn as
  inverted MIPs, as angiograms (DRR), and as angiograms with the artery target. Does the
  angiographic projection, and the vessel-aware target, make the transfer better?
- ``--study epochs``: the default model pretrained for 20 (the default) and 60 epochs. Is
  pretraining's own task (presence per external source) limited by optimisation, and does a
  longer pretraining transfer better?
- ``--study pretraining``: the default pretraining against a higher pretraining learning rate
  and against no domain randomisation of the projected views, the two settings that lifted
  pretraining's own task a little (``pretrain_task.py``). Do they transfer to K-ium?
- ``--study pooling``: the default against the two other ways of combining views that
  ``pretrain_task.py`` measured on pretraining's own task (the biplane rows cue, and the
  clearest view instead of a noisy-OR), each used in pretraining and fine-tuning. Do they help
  on K-ium, whose frontal and lateral views are the biplane pairs the cue is built for?
- ``--study stride``: the dense map at stride 4 (three decoder blocks) and at stride 2 (four),
  pretrained, and stride 2 from scratch. Does a finer map find the 2-6 px aneurysm better?
- ``--study balance``: the default pretraining against the lesion-balanced map loss (every
  view's aneurysm cells weigh alike, whatever the aneurysm's size), which lifted pretraining's
  own task in every seed (``pretrain_task.py``). Does it transfer to K-ium?

Per seed, all arms see the same synthetic data (K-ium and external, drawn from that seed), the
same patient-level folds (every arm reuses the first arm's splits.json) and the same config;
only what the arm names differs. Each arm is scored three ways: the pooled out-of-fold CV AUROC
at the final epoch (no epoch chosen on validation), the AUROC on held-out test patients (fold
ensemble), and the mean per-location AUROC on those patients. Pretraining is scored per source
on its own held-out validation split.

    python scripts/pretrain_evidence.py --study heads projection

Arms that two studies share (the default head, pretrained the default way) are trained once.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aneurysm.config import ExperimentConfig, config_to_dict, load_config, with_overrides
from aneurysm.evaluation.official import evaluate_files
from aneurysm.evaluation.report import write_report
from aneurysm.inference.predict import predict_run
from aneurysm.registry import get_adapter
from aneurysm.sources import load_sources
from aneurysm.synth.external import ExternalSynthConfig, write_external
from aneurysm.synth.kium import SynthConfig, write_kium
from aneurysm.training.finetune import finetune
from aneurysm.training.pretrain import CHECKPOINT, pretrain

METRICS = ("held_out", "cv_final", "locations")
LABELS = {"held_out": "held-out AUROC", "cv_final": "CV AUROC, final epoch",
          "locations": "mean per-location AUROC, held-out"}


@dataclass(frozen=True)
class Arm:
    name: str
    pretrained: bool
    overrides: dict = field(default_factory=dict)  # {section: {key: value}} on the base config


_DRR = {"projection": {"mode": "drr"}}
_STRIDE_2 = {"model": {"decoder_channels": [64, 32, 16, 16]}}  # a fourth decoder block
STUDIES: dict[str, tuple[tuple[Arm, ...], tuple[tuple[str, str, str], ...]]] = {
    "heads": (
        (Arm("global, scratch", False, {"model": {"head": "global"}}),
         Arm("global, pretrained", True, {"model": {"head": "global"}}),
         Arm("dense, scratch", False, {"model": {"head": "dense"}}),
         Arm("dense, pretrained", True, {"model": {"head": "dense"}})),
        (("global: pretrained − scratch", "global, pretrained", "global, scratch"),
         ("dense: pretrained − scratch", "dense, pretrained", "dense, scratch"),
         ("pretrained: dense − global", "dense, pretrained", "global, pretrained"),
         ("scratch: dense − global", "dense, scratch", "global, scratch")),
    ),
    "projection": (
        (Arm("scratch", False),
         Arm("pretrained, MIP", True, {"projection": {"mode": "mip"},
                                       "train": {"artery_loss_weight": 0.0}}),
         Arm("pretrained, DRR", True, {**_DRR, "train": {"artery_loss_weight": 0.0}}),
         Arm("pretrained, DRR + arteries", True, {**_DRR, "train": {"artery_loss_weight": 1.0}})),
        (("DRR − MIP", "pretrained, DRR", "pretrained, MIP"),
         ("arteries: with − without", "pretrained, DRR + arteries", "pretrained, DRR"),
         ("DRR − scratch", "pretrained, DRR", "scratch"),
         ("MIP − scratch", "pretrained, MIP", "scratch")),
    ),
    "epochs": (
        (Arm("scratch", False),
         Arm("pretrained, 20 epochs", True, {"train": {"pretrain_epochs": 20}}),
         Arm("pretrained, 60 epochs", True, {"train": {"pretrain_epochs": 60}})),
        (("60 − 20 pretraining epochs", "pretrained, 60 epochs", "pretrained, 20 epochs"),
         ("20 epochs − scratch", "pretrained, 20 epochs", "scratch"),
         ("60 epochs − scratch", "pretrained, 60 epochs", "scratch")),
    ),
    "pretraining": (
        (Arm("scratch", False),
         Arm("pretrained (default)", True),
         Arm("pretrained, lr 0.005", True, {"train": {"pretrain_lr": 0.005}}),
         Arm("pretrained, no domain randomisation", True,
             {"augment": {"projections": {"enabled": False}}})),
        (("lr 0.005 − default", "pretrained, lr 0.005", "pretrained (default)"),
         ("no domain randomisation − default", "pretrained, no domain randomisation",
          "pretrained (default)"),
         ("default − scratch", "pretrained (default)", "scratch")),
    ),
    "pooling": (
        (Arm("pretrained (default)", True),
         Arm("pretrained, biplane rows", True, {"model": {"cross_view": "biplane"}}),
         Arm("pretrained, max over views", True, {"model": {"view_pool": "max"}})),
        (("biplane rows − default", "pretrained, biplane rows", "pretrained (default)"),
         ("max over views − default", "pretrained, max over views", "pretrained (default)")),
    ),
    "stride": (
        (Arm("stride 2, scratch", False, _STRIDE_2),
         Arm("pretrained, map at stride 4", True),
         Arm("pretrained, map at stride 2", True, _STRIDE_2)),
        (("stride 2 − stride 4, pretrained", "pretrained, map at stride 2",
          "pretrained, map at stride 4"),
         ("stride 2: pretrained − scratch", "pretrained, map at stride 2", "stride 2, scratch")),
    ),
    "balance": (
        (Arm("pretrained (default)", True),
         Arm("pretrained, lesion-balanced map loss", True, {"train": {"map_loss_balance": True}})),
        (("lesion-balanced − default", "pretrained, lesion-balanced map loss",
          "pretrained (default)"),),
    ),
}


def _arm_config(base: ExperimentConfig, arm: Arm, seed: int, cache: Path) -> ExperimentConfig:
    return with_overrides(base, {**arm.overrides, "data": {"cache_dir": str(cache)},
                                 "train": {**arm.overrides.get("train", {}), "seed": seed}})


def run_seed(out: Path, seed: int, base: ExperimentConfig, arms: tuple[Arm, ...], args) -> dict:
    """Synthesize this seed's data, pretrain what the arms need, fine-tune and score them."""
    start = time.time()
    data = out / "data"
    write_kium(data / "kium", SynthConfig(patients=args.kium, test=args.test, seed=seed,
                                          image_size=256), force=True)
    write_external(data, ExternalSynthConfig(
        rsna=args.rsna, adam=args.adam, lausanne=args.lausanne, cada=args.cada,
        topcow=args.topcow, seed=seed + 1000), force=True)
    sources, _ = load_sources(["external"], data)
    kium = get_adapter("kium")
    train, test = kium.load(data / "kium", "train"), kium.load(data / "kium", "test")
    result: dict = {"seed": seed, "arms": {}, "pretrain": {}}
    splits, checkpoints, done = None, {}, {}
    for k, arm in enumerate(arms):
        config = _arm_config(base, arm, seed, out / "cache")
        same = json.dumps([arm.pretrained, config_to_dict(config)], sort_keys=True)
        if same in done:  # one arm under two studies' names: fine-tuned once
            result["arms"][arm.name] = result["arms"][done[same]]
            if done[same] in result["pretrain"]:
                result["pretrain"][arm.name] = result["pretrain"][done[same]]
            continue
        done[same] = arm.name
        init = None
        if arm.pretrained:
            key = json.dumps({s: v for s, v in config_to_dict(config).items()
                              if s in ("model", "projection", "train", "augment")},
                             sort_keys=True)
            if key not in checkpoints:
                t0 = time.time()
                folder = out / f"pretrain_{len(checkpoints)}"
                scores = pretrain(folder, sources, config, force=True)
                checkpoints[key] = (str(folder / CHECKPOINT), {
                    "minutes": (time.time() - t0) / 60,
                    "per_source": {s.source: s.auroc for s in scores}})
            init, result["pretrain"][arm.name] = checkpoints[key]
        t0 = time.time()
        run = out / f"arm_{k}"
        finetune(run, train, config, folds=args.folds, init=init, force=True, splits_file=splits)
        splits = splits or str(run / "splits.json")
        report = write_report(run)
        predict_run(run, test, run / "output_prob.csv", locations="prob", force=True)
        held = evaluate_files(data / "kium" / "groundtruth.csv", run / "output_prob.csv")
        locs = [s.auroc for s in held.locations if not math.isnan(s.auroc)]
        result["arms"][arm.name] = {
            "held_out": held.presence.value,
            "held_out_ci": [held.presence.low, held.presence.high],
            "cv_final": report.presence_last_epoch.value,
            "locations": float(np.mean(locs)) if locs else math.nan,
            "locations_defined": len(locs), "minutes": (time.time() - t0) / 60}
    result["minutes"] = (time.time() - start) / 60
    return result


def mean_sd(values: list[float]) -> str:
    """'mean ± sd' of the defined values, 'n/a' without any."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def tables(results: list[dict], study: str, args, minutes: float) -> str:
    seeds = [r["seed"] for r in results]
    arms = [a.name for a in STUDIES[study][0]]
    pairs = STUDIES[study][1]
    lines = [f"Study `{study}`. Synthetic K-ium: {args.kium} training patients "
             f"({args.folds} patient-level folds), {args.test} held-out test patients. "
             f"Synthetic external: RSNA {args.rsna}, ADAM {args.adam}, Lausanne {args.lausanne}, "
             f"CADA {args.cada} cases, TopCoW {args.topcow} patients (CTA + MRA). Config: "
             f"{args.config or 'built-in defaults'}. Seeds {seeds}: each draws its own data; "
             "within a seed the arms share data and folds.", "",
             "| arm | " + " | ".join(LABELS[m] for m in METRICS) + " |",
             "|---|" + "---|" * len(METRICS)]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(
            mean_sd([r["arms"][arm][m] for r in results]) for m in METRICS) + " |")
    lines += ["", "Mean ± sd over seeds.", "", "Paired differences per seed "
              "(held-out AUROC; mean per-location AUROC in brackets):", "",
              "| difference | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
              "|---|" + "---|" * (len(seeds) + 1)]
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
    pretrained = [a for a in arms if a in results[0]["pretrain"]]
    sources = sorted(results[0]["pretrain"][pretrained[0]]["per_source"]) if pretrained else []
    if sources:
        lines += ["", "Pretraining, validation AUROC per source (held out before pooling), "
                  "mean ± sd over seeds:", "", "| pretraining of | " + " | ".join(sources) + " |",
                  "|---|" + "---|" * len(sources)]
        for arm in pretrained:
            lines.append(f"| {arm} | " + " | ".join(
                mean_sd([r["pretrain"][arm]["per_source"][s] for r in results])
                for s in sources) + " |")
        lines += ["", "n/a: a source without negatives (CADA) or without positives (TopCoW) "
                  "has no AUROC."]
    lines += ["", f"Wall time: {minutes:.1f} min in all ("
              + ", ".join(f"seed {r['seed']} {r['minutes']:.1f} min" for r in results) + ")."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", choices=sorted(STUDIES), nargs="+", default=["heads"],
                    help="one or more; an arm two studies share is trained once")
    ap.add_argument("--out", default=None, help="default: runs/evidence-STUDY[-STUDY]")
    ap.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--kium", type=int, default=150, help="synthetic K-ium training patients")
    ap.add_argument("--test", type=int, default=80, help="held-out synthetic test patients")
    ap.add_argument("--rsna", type=int, default=100)
    ap.add_argument("--adam", type=int, default=40)
    ap.add_argument("--lausanne", type=int, default=80)
    ap.add_argument("--cada", type=int, default=20)
    ap.add_argument("--topcow", type=int, default=10, help="patients, a CTA and an MRA each")
    ap.add_argument("--folds", type=int, default=3)
    args = ap.parse_args()

    start = time.time()
    out = Path(args.out or "runs/evidence-" + "-".join(args.study))
    arms = tuple(a for study in args.study for a in STUDIES[study][0])
    base = load_config(args.config)
    results = []
    for seed in args.seeds:
        results.append(run_seed(out / f"seed_{seed}", seed, base, arms, args))
        (out / "evidence.json").write_text(json.dumps(results, indent=1))
        print(f"seed {seed} done in {results[-1]['minutes']:.1f} min", flush=True)
    minutes = (time.time() - start) / 60
    text = "\n\n".join(tables(results, study, args, minutes) for study in args.study)
    (out / "evidence.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
