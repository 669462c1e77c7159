"""A patch ceiling for a pretraining run: can the aneurysm be told from what the map confuses
it with, at this resolution and with this much data?

A small CNN of its own is trained on the run's training views, on patches centred on
footprints (positives) and on the dense map's peak in each view of an aneurysm-free study (the
hardest negatives: what the study's maximum competes with), and scored on validation views.
Beside it, the dense map's own score at those points; and the study AUROC of a two-stage
reading (the patch CNN at each view's strongest map cells), what a GMIC-style second stage
would rely on.
"""

from __future__ import annotations

import math

import numpy as np

from ..metrics import safe_auroc
from .runs import LoadedRun
from .spec import NEGATIVE_SOURCES


def patch_ceiling(r: LoadedRun, size: int = 24, epochs: int = 40, seed: int = 0,
                  peaks: int = 3) -> dict[str, dict[str, float]]:
    """Per source on validation: the patch CNN's AUROC, the dense map's at the same points and
    the two-stage study AUROC; the CNN's on its own training patches; the patch counts."""
    import torch

    a, maps = r.arrays, r.maps
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
    train = torch.tensor(~r.val[study])
    stride = a.images.shape[-1] / maps.shape[-1]
    dense = np.array([maps[i, j, max(int(cy / stride) - 1, 0):int(cy / stride) + 2,
                           max(int(cx / stride) - 1, 0):int(cx / stride) + 2].max()
                      for i, j, cy, cx, _ in points])
    net = _train(x[train], y[train], epochs, seed)
    score = _score(net, x)
    val, labels, source = ~train.numpy(), y.numpy(), r.source[study]
    cascade = _cascade(r, net, padded, size, peaks)
    out = {s: {"patch CNN": safe_auroc(labels[m], score[m]),
               "dense map": safe_auroc(labels[m], dense[m]),
               f"study, patch CNN at top-{peaks} peaks": cascade.get(s, math.nan)}
           for s in NEGATIVE_SOURCES for m in [val & (source == s)]}
    out["training patches"] = {"patch CNN": safe_auroc(labels[~val], score[~val]),
                               "dense map": safe_auroc(labels[~val], dense[~val])}
    out["counts"] = {"train positive": float(labels[~val].sum()),
                     "train negative": float((1 - labels[~val]).sum()),
                     "val positive": float(labels[val].sum()),
                     "val negative": float((1 - labels[val]).sum())}
    return out


def _points(r: LoadedRun) -> list[tuple[int, int, float, float, int]]:
    """(study, view, row, column, label): footprint centres, and map peaks of aneurysm-free
    views, in pixels."""
    from ..preprocessing import CELL_ANEURYSM

    a, maps = r.arrays, r.maps
    stride = a.images.shape[-1] / maps.shape[-1]
    out = []
    for i in np.flatnonzero(np.isin(r.source, NEGATIVE_SOURCES)):
        for j in np.flatnonzero(a.view_mask[i]):
            cells = a.footprints[i, j] == CELL_ANEURYSM
            if cells.any():
                rows, cols = np.nonzero(cells)
                out.append((i, j, (rows.mean() + 0.5) * stride, (cols.mean() + 0.5) * stride, 1))
            elif a.presence[i] < 0.5:
                row, col = np.unravel_index(maps[i, j].argmax(), maps[i, j].shape)
                out.append((i, j, (row + 0.5) * stride, (col + 0.5) * stride, 0))
    return out


def _patch_net():
    from torch import nn

    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
    return nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64),
                         *block(64, 64), nn.MaxPool2d(2), *block(64, 128),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(128, 1))


def _train(xt, yt, epochs: int, seed: int):
    """The patch CNN, trained with rotations, mirroring and noise (patches have no up)."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = _patch_net()
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
    return net.eval()


def _score(net, x) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.cat([net(x[s:s + 256])[:, 0] for s in range(0, len(x), 256)]).numpy()


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


def _cascade(r: LoadedRun, net, padded: np.ndarray, size: int, k: int) -> dict[str, float]:
    """Study AUROC per source on validation when each view is read by the patch CNN at its k
    strongest map cells, the study's score the maximum over them."""
    import torch

    a, maps = r.arrays, r.maps
    stride = a.images.shape[-1] / maps.shape[-1]
    studies = np.flatnonzero(r.val & np.isin(r.source, NEGATIVE_SOURCES))
    crops, owner = [], []
    for i in studies:
        for j in np.flatnonzero(a.view_mask[i]):
            for row, col in _top_cells(maps[i, j], k):
                cy, cx = int((row + 0.5) * stride), int((col + 0.5) * stride)
                crops.append(padded[i, j, cy:cy + size, cx:cx + size])
                owner.append(i)
    if not crops:
        return {}
    score = _score(net, torch.tensor(np.stack(crops), dtype=torch.float32)[:, None] / 255)
    best = {i: -np.inf for i in studies}
    for i, value in zip(owner, score):
        best[i] = max(best[i], float(value))
    return {s: safe_auroc(a.presence[m], np.array([best[i] for i in m]))
            for s in NEGATIVE_SOURCES for m in [studies[r.source[studies] == s]]}
