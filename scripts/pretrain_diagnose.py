"""Where does pretraining's own task fail: in the views, in pooling them, or in what a view shows?

For each pretraining run given (``aneurysm pretrain`` output, e.g. the default arm of
``scripts/pretrain_task.py``), on the run's own validation split, per source with negatives:

1. **pooling**: study AUROC as the model pools views (noisy-OR; no test-time mirroring here, so
   it can differ from the run's own report by a few hundredths) and with the maximum
   over views instead, and with the biplane cue (``model.cross_view: biplane``) added after
   the fact at weight 1, to a model trained with or without it;
2. **views**: view AUROC, the views that show the aneurysm's footprint against every view of the
   aneurysm-free studies;
3. **a patch ceiling**: a small CNN of its own, trained on the run's training views on patches
   centred on footprints (positives) and on the dense map's peak in each view of an aneurysm-free
   study (the hardest negatives: what the study's maximum competes with), scored on the
   validation views. Beside it, the dense map's own score at the same points (at these
   negatives it is the view's maximum by construction: how the model ranks them, not an
   unbiased patch score). It asks whether the aneurysm can be told from a bifurcation at this
   resolution with this much data, which is what a GMIC-style second stage would rely on.

Prints each run and, over several runs (seeds), mean ± sd.

    python scripts/pretrain_diagnose.py runs/pretrain-task/seed_{0,1,2}/default
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from aneurysm.config import load_config
from aneurysm.errors import AneurysmError
from aneurysm.model.checkpoint import load_model
from aneurysm.model.dense import biplane_evidence, pool_views, smooth_max
from aneurysm.preprocessing import CELL_ANEURYSM, ImageCache
from aneurysm.schema import load_manifest
from aneurysm.training.arrays import build_arrays, footprint_stride
from aneurysm.training.pretrain import CHECKPOINT
from aneurysm.training.steps import iter_outputs, resolve_device
from pretrain_evidence import mean_sd  # scripts/ is on the path of a script run from it
from pretrain_task import SOURCES  # the sources with negatives


def _auroc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if len(set(y.tolist())) == 2 else math.nan


def load_run(run: Path) -> dict:
    """The run's arrays (every study), which are validation, and the model's outputs on them;
    a run that cannot be read exits with one line."""
    try:
        return _load_run(run)
    except AneurysmError as exc:
        raise SystemExit(str(exc)) from None


def _load_run(run: Path) -> dict:
    for name in ("config.yaml", "splits.json", "records.json", CHECKPOINT):
        if not (run / name).is_file():
            raise SystemExit(f"{run}: no {name}; is this a finished `aneurysm pretrain` run?")
    config = load_config(str(run / "config.yaml"))
    splits = json.loads((run / "splits.json").read_text())
    val_ids = {s for v in splits.values() for s in v["val"]}
    arrays, _, _ = build_arrays(load_manifest(run / "records.json"),
                                ImageCache(config.data.cache_dir, config.preprocess),
                                progress=False,
                                footprint_stride=footprint_stride(config.model.map_stride))
    device = resolve_device(config.train.device)
    model = load_model(run / CHECKPOINT, config.model, device)
    views, studies, maps = [], [], []
    for _, out in iter_outputs(model, arrays, config.train, device):
        views.append(out["view_logits"].float().cpu())
        studies.append(out["presence"].float().cpu())
        maps.append(out["maps"].float().cpu())
    bias = model.heads["view_bias"].weight[:, 0].detach().float().cpu()
    return {"arrays": arrays, "val": np.array([s in val_ids for s in arrays.study_ids]),
            "view_bias": bias[torch.as_tensor(arrays.view_ids)].numpy(),
            "sharpness": config.model.pool_sharpness,
            "source": np.array([s.split(":")[0] for s in arrays.study_ids]),
            "view_logits": torch.cat(views).numpy(), "presence": torch.cat(studies).numpy(),
            "maps": torch.cat(maps).numpy()}


def biplane_post_hoc(r: dict, weight: float = 1.0, band: int = 1) -> np.ndarray:
    """Study logits when each view's map gains ``weight`` times its biplane partner's rows
    before pooling (no test-time mirroring, as the rest of this script)."""
    a, sharpness = r["arrays"], r["sharpness"]
    maps, mask = torch.as_tensor(r["maps"]), torch.as_tensor(a.view_mask)
    rows = biplane_evidence(maps, torch.as_tensor(a.view_ids), mask, sharpness, band)
    views = smooth_max(maps + weight * rows.unsqueeze(-1), sharpness) + torch.as_tensor(
        r["view_bias"])
    return pool_views(views, mask, "noisy_or", sharpness).numpy()


def pooling_and_views(r: dict) -> dict[str, dict[str, float]]:
    """Per source on validation: study AUROC by noisy-OR, by max over views and with the
    biplane cue added after the fact; view AUROC."""
    a = r["arrays"]
    biplane = biplane_post_hoc(r)
    shows = (a.footprints == CELL_ANEURYSM).any((-1, -2)) & a.view_mask
    out = {}
    for source in SOURCES:
        m = r["val"] & (r["source"] == source)
        y = a.presence[m]
        logits = np.where(a.view_mask[m], r["view_logits"][m], -np.inf)
        free = (y < 0.5)[:, None] & a.view_mask[m]
        positive, negative = r["view_logits"][m][shows[m]], r["view_logits"][m][free]
        out[source] = {
            "study, noisy-OR": _auroc(y, r["presence"][m]),
            "study, max over views": _auroc(y, logits.max(1)),
            "study, + biplane rows post hoc": _auroc(y, biplane[m]),
            "view": _auroc(np.r_[np.ones(len(positive)), np.zeros(len(negative))],
                           np.r_[positive, negative])}
    return out


def _points(r: dict) -> list[tuple[int, int, float, float, int]]:
    """(study, view, row, column, label): footprint centres, and map peaks of aneurysm-free
    views, in pixels."""
    a, maps = r["arrays"], r["maps"]
    stride = a.images.shape[-1] / maps.shape[-1]
    out = []
    for i in np.flatnonzero(np.isin(r["source"], SOURCES)):
        for j in np.flatnonzero(a.view_mask[i]):
            cells = a.footprints[i, j] == CELL_ANEURYSM
            if cells.any():
                rows, cols = np.nonzero(cells)
                out.append((i, j, (rows.mean() + 0.5) * stride, (cols.mean() + 0.5) * stride, 1))
            elif a.presence[i] < 0.5:
                row, col = np.unravel_index(maps[i, j].argmax(), maps[i, j].shape)
                out.append((i, j, (row + 0.5) * stride, (col + 0.5) * stride, 0))
    return out


def _patch_net() -> nn.Module:
    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
    return nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64),
                         *block(64, 64), nn.MaxPool2d(2), *block(64, 128),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(128, 1))


def patch_ceiling(r: dict, size: int, epochs: int, seed: int, peaks: int
                  ) -> dict[str, dict[str, float]]:
    """Per source on validation: the patch CNN's AUROC, footprints against map peaks of
    aneurysm-free views, and the dense map's at the same points; and the study AUROC of a
    two-stage reading (the patch CNN at each view's strongest map cells, maximum over them)."""
    a, maps = r["arrays"], r["maps"]
    points = _points(r)
    if not points:
        return {}
    half = size // 2
    padded = np.pad(a.images, ((0, 0), (0, 0), (half, half), (half, half)),
                    constant_values=int(np.median(a.images)))
    x = torch.tensor(np.stack([padded[i, j, int(cy):int(cy) + size, int(cx):int(cx) + size]
                               for i, j, cy, cx, _ in points]), dtype=torch.float32)[:, None] / 255
    y = torch.tensor([p[4] for p in points], dtype=torch.float32)
    study = np.array([p[0] for p in points])
    train = torch.tensor(~r["val"][study])
    stride = a.images.shape[-1] / maps.shape[-1]
    dense = np.array([maps[i, j, max(int(cy / stride) - 1, 0):int(cy / stride) + 2,
                           max(int(cx / stride) - 1, 0):int(cx / stride) + 2].max()
                      for i, j, cy, cx, _ in points])
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = _patch_net()
    xt, yt = x[train], y[train]
    steps = epochs * math.ceil(len(xt) / 64)
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=max(steps, 1))
    pos_weight = (1 - yt).sum() / yt.sum().clamp(min=1)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), 64):
            idx = order[start:start + 64]
            batch = torch.rot90(xt[idx], int(torch.randint(4, (), generator=generator)), (2, 3))
            if torch.rand((), generator=generator) < 0.5:
                batch = batch.flip(-1)
            batch = batch + 0.02 * torch.randn(batch.shape, generator=generator)
            loss = F.binary_cross_entropy_with_logits(net(batch)[:, 0], yt[idx],
                                                      pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    net.eval()
    with torch.no_grad():
        score = torch.cat([net(x[s:s + 256])[:, 0] for s in range(0, len(x), 256)]).numpy()
    val, labels, source = ~train.numpy(), y.numpy(), r["source"][study]
    cascade = _cascade(r, net, padded, size, peaks)
    out = {s: {"patch CNN": _auroc(labels[m], score[m]), "dense map": _auroc(labels[m], dense[m]),
               f"study, patch CNN at top-{peaks} peaks": cascade.get(s, math.nan)}
           for s in SOURCES for m in [val & (source == s)]}
    out["training patches"] = {"patch CNN": _auroc(labels[~val], score[~val]),
                               "dense map": _auroc(labels[~val], dense[~val])}
    out["counts"] = {"train positive": float(labels[~val].sum()),
                     "train negative": float((1 - labels[~val]).sum()),
                     "val positive": float(labels[val].sum()),
                     "val negative": float((1 - labels[val]).sum())}
    return out


def _top_cells(m: np.ndarray, k: int) -> list[tuple[int, int]]:
    """The k strongest cells of a map, each at least two cells from those already taken."""
    taken: list[tuple[int, int]] = []
    for flat in np.argsort(m, axis=None)[::-1]:
        row, col = divmod(int(flat), m.shape[1])
        if all(max(abs(row - a), abs(col - b)) > 1 for a, b in taken):
            taken.append((row, col))
            if len(taken) == k:
                break
    return taken


def _cascade(r: dict, net: nn.Module, padded: np.ndarray, size: int, k: int) -> dict[str, float]:
    """Study AUROC per source on validation when each view is read by the patch CNN at its k
    strongest map cells: what a GMIC-style second stage could give, with this patch CNN."""
    a, maps = r["arrays"], r["maps"]
    stride = a.images.shape[-1] / maps.shape[-1]
    studies = np.flatnonzero(r["val"] & np.isin(r["source"], SOURCES))
    crops, owner = [], []
    for i in studies:
        for j in np.flatnonzero(a.view_mask[i]):
            for row, col in _top_cells(maps[i, j], k):
                cy, cx = int((row + 0.5) * stride), int((col + 0.5) * stride)
                crops.append(padded[i, j, cy:cy + size, cx:cx + size])
                owner.append(i)
    if not crops:
        return {}
    x = torch.tensor(np.stack(crops), dtype=torch.float32)[:, None] / 255
    with torch.no_grad():
        score = torch.cat([net(x[s:s + 256])[:, 0] for s in range(0, len(x), 256)]).numpy()
    best = {i: -np.inf for i in studies}
    for i, value in zip(owner, score):
        best[i] = max(best[i], float(value))
    return {s: _auroc(a.presence[m], np.array([best[i] for i in m]))
            for s in SOURCES for m in [studies[r["source"][studies] == s]]}


def montage(r: dict, path: Path, per_row: int = 6) -> None:
    """The hardest validation views: those showing an aneurysm that the model scores lowest
    (footprint circled) and aneurysm-free ones it scores highest, each above its map; x marks
    the map's peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, maps, logits = r["arrays"], r["maps"], r["view_logits"]
    val = r["val"] & np.isin(r["source"], SOURCES)
    shows = (a.footprints == CELL_ANEURYSM).any((-1, -2)) & a.view_mask & val[:, None]
    free = (a.presence < 0.5)[:, None] & a.view_mask & val[:, None]
    rows = [("aneurysm, scored lowest", sorted(zip(*np.nonzero(shows)),
                                               key=lambda ij: logits[ij])[:per_row]),
            ("aneurysm-free, scored highest", sorted(zip(*np.nonzero(free)),
                                                     key=lambda ij: -logits[ij])[:per_row])]
    stride = a.images.shape[-1] / maps.shape[-1]
    fig, axes = plt.subplots(4, per_row, figsize=(2.2 * per_row, 9), squeeze=False)
    for k, (title, views) in enumerate(rows):
        for c in range(per_row):
            top, bottom = axes[2 * k, c], axes[2 * k + 1, c]
            top.axis("off")
            bottom.axis("off")
            if c >= len(views):
                continue
            i, j = views[c]
            top.imshow(a.images[i, j], cmap="gray")
            cells = np.argwhere(a.footprints[i, j] == CELL_ANEURYSM)
            if len(cells):
                top.scatter((cells[:, 1] + 0.5) * stride, (cells[:, 0] + 0.5) * stride, s=60,
                            facecolors="none", edgecolors="red")
            row, col = np.unravel_index(maps[i, j].argmax(), maps[i, j].shape)
            top.scatter([(col + 0.5) * stride], [(row + 0.5) * stride], marker="x", c="cyan")
            top.set_title(f"{a.study_ids[i][:18]} view {j}\nlogit {logits[i, j]:.1f}",
                          fontsize=7)
            bottom.imshow(maps[i, j], cmap="magma")
    fig.tight_layout(h_pad=2.5, rect=(0, 0, 1, 0.96))
    for k, (title, _) in enumerate(rows):
        fig.text(0.01, axes[2 * k, 0].get_position().y1 + 0.045, title, fontsize=11,
                 weight="bold")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _table(results: list[dict], key: str, columns: list[str], rows: list[str]) -> list[str]:
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(
            mean_sd([r[key].get(row, {}).get(c, math.nan) for r in results]) for c in columns)
            + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="aneurysm pretrain output folders")
    ap.add_argument("--patch", type=int, default=24, help="patch side in pixels of the cache")
    ap.add_argument("--epochs", type=int, default=40, help="patch CNN epochs")
    ap.add_argument("--peaks", type=int, default=3,
                    help="map cells per view the two-stage reading scores")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-patches", action="store_true",
                    help="pooling and views only: skip the patch CNN (minutes per run)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--montage", type=Path, default=None,
                    help="PNG of the first run's hardest validation views and their maps")
    args = ap.parse_args()
    results = []
    for run in args.runs:
        r = load_run(run)
        if args.montage and not results:
            montage(r, args.montage)
        results.append({"run": str(run), "pooling": pooling_and_views(r), "patches": (
            {} if args.no_patches else patch_ceiling(r, args.patch, args.epochs, args.seed,
                                                     args.peaks))})
        counts = results[-1]["patches"].get("counts", {})
        print(f"{run}: " + ", ".join(f"{k} {int(v)}" for k, v in counts.items()) + " patches",
              flush=True)
    print(f"\nStudy and view AUROC on validation, mean ± sd over {len(results)} run(s):\n")
    print("\n".join(_table(results, "pooling", ["study, noisy-OR", "study, max over views",
                                                "study, + biplane rows post hoc", "view"],
                           list(SOURCES))))
    def biplane_gain(r: dict, s: str) -> float:
        return r["pooling"][s]["study, + biplane rows post hoc"] - r["pooling"][s][
            "study, noisy-OR"]
    print("\nPaired differences per run, + biplane rows post hoc − noisy-OR: " + "; ".join(
        f"{s} " + ", ".join(f"{biplane_gain(r, s):+.3f}" for r in results) for s in SOURCES))
    if args.no_patches:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        return
    print(f"\nFootprints against the dense map's peak in aneurysm-free views, {args.patch}-px "
          "patches, validation (and the training patches the CNN learnt):\n")
    print("\n".join(_table(results, "patches", ["patch CNN", "dense map"],
                           [*SOURCES, "training patches"])))
    cascade = f"study, patch CNN at top-{args.peaks} peaks"
    print(f"\nStudy AUROC on validation read by the patch CNN at each view's {args.peaks} "
          "strongest map cells (a two-stage reading), against the model's own:\n")
    for row in results:  # the model's own study AUROC beside it
        for s in SOURCES:
            row["patches"].get(s, {})["study, noisy-OR"] = row["pooling"][s]["study, noisy-OR"]
    print("\n".join(_table(results, "patches", ["study, noisy-OR", cascade],
                           list(SOURCES))))
    def gain(r: dict, s: str) -> float:
        return r["patches"].get(s, {}).get(cascade, math.nan) - r["pooling"][s]["study, noisy-OR"]
    print("\nPaired differences per run, two-stage reading − the model's own: " + "; ".join(
        f"{s} " + ", ".join(f"{gain(r, s):+.3f}" for r in results) for s in SOURCES))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
