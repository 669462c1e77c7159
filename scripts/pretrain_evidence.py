"""Does external pretraining help? Fine-tune from scratch vs from the external checkpoint.

Both arms use the same synthetic K-ium training set (small, as the real one is), the same
patient-level folds (the pretrained arm reuses the scratch arm's splits.json), the same config,
epochs and seed. Only ``--init`` differs. Prints one table and writes it to OUT/evidence.md.

    python scripts/pretrain_evidence.py --out runs/evidence
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from aneurysm.config import DataConfig, load_config
from aneurysm.evaluation.official import evaluate_files
from aneurysm.evaluation.report import write_report
from aneurysm.inference.predict import predict_run
from aneurysm.registry import get_adapter
from aneurysm.sources import load_sources
from aneurysm.synth.external import ExternalSynthConfig, write_external
from aneurysm.synth.kium import SynthConfig, write_kium
from aneurysm.training.finetune import finetune
from aneurysm.training.pretrain import CHECKPOINT, pretrain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/evidence")
    ap.add_argument("--config", default="configs/evidence.yaml", help="YAML config")
    ap.add_argument("--kium", type=int, default=150, help="synthetic K-ium training patients")
    ap.add_argument("--test", type=int, default=80, help="held-out synthetic test patients")
    ap.add_argument("--rsna", type=int, default=200)
    ap.add_argument("--adam", type=int, default=60)
    ap.add_argument("--lausanne", type=int, default=100)
    ap.add_argument("--cada", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=12, help="fine-tuning epochs, both arms")
    ap.add_argument("--pretrain-epochs", type=int, default=30)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    start = time.time()
    out = Path(args.out)
    base = load_config(args.config, {"train": {"seed": args.seed}})
    config = dataclasses.replace(
        base, data=DataConfig(cache_dir=str(out / "cache"), workers=base.data.workers),
        train=dataclasses.replace(base.train, epochs=args.epochs))
    data = out / "data"
    write_kium(data / "kium", SynthConfig(patients=args.kium, test=args.test, seed=args.seed,
                                          image_size=256), force=True)
    write_external(data, ExternalSynthConfig(rsna=args.rsna, adam=args.adam,
                                             lausanne=args.lausanne, cada=args.cada,
                                             seed=args.seed + 1), force=True)
    sources, _ = load_sources(["external"], data)
    pre_config = dataclasses.replace(
        config, train=dataclasses.replace(config.train, epochs=args.pretrain_epochs))
    scores = pretrain(out / "pretrain", sources, pre_config, force=True)

    kium = get_adapter("kium")
    train, test = kium.load(data / "kium", "train"), kium.load(data / "kium", "test")
    rows = []
    for arm, init in (("scratch", None), ("pretrained", str(out / "pretrain" / CHECKPOINT))):
        run = out / arm
        splits = None if arm == "scratch" else str(out / "scratch" / "splits.json")
        finetune(run, train, config, folds=args.folds, init=init, force=True,
                 splits_file=splits)
        report = write_report(run)
        predict_run(run, test, run / "output.csv", force=True)
        held = evaluate_files(data / "kium" / "groundtruth.csv", run / "output.csv")
        rows.append((arm, report, held))

    lines = [
        f"K-ium (synthetic): {args.kium} training patients, {args.folds} patient-level folds, "
        f"{args.test} held-out test patients. External (synthetic): "
        + ", ".join(f"{s.source} {s.train + s.val}" for s in scores)
        + f" cases, pretrained {args.pretrain_epochs} epochs. Fine-tuning: {args.epochs} "
        f"epochs, seed {args.seed}, same folds and config in both arms.", "",
        "| arm | CV AUROC [95% CI] | CV AUROC, final epoch | held-out AUROC [95% CI] | "
        "train − val gap |", "|---|---|---|---|---|",
    ]
    for arm, r, h in rows:
        lines.append(f"| {arm} | {r.presence} | {r.presence_last_epoch} | {h.presence} | "
                     f"{r.mean_gap:+.3f} |")
    lines += ["", "Pretraining, validation AUROC per source (held out before pooling): "
              + ", ".join(f"{s.source} " + ("n/a (no negatives)" if s.auroc != s.auroc
                                             else f"{s.auroc:.3f}") for s in scores) + ".",
              f"Wall time: {(time.time() - start) / 60:.1f} min."]
    text = "\n".join(lines)
    (out / "evidence.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
