"""One fold: epochs of training with per-epoch metrics, best/last checkpoints, resume."""

from __future__ import annotations

import contextlib
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from monai.utils import set_determinism
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..evaluation.metrics import safe_auroc
from ..io.atomic import atomic_path, atomic_write_text
from ..model.checkpoint import read_checkpoint, save_checkpoint
from ..model.losses import multitask_loss
from .arrays import StudyArrays
from .augment import (
    AugmentConfig,
    augment_batch,
    mirror_location_scores,
    mirror_study,
    prepare_batch,
)
from .config import TrainConfig
from .dataset import StudyDataset

HISTORY_FIELDS = ("epoch", "lr", "train_loss", "train_auroc", "val_loss", "val_auroc")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch: dict[str, torch.Tensor], device: torch.device,
              augment: AugmentConfig | None = None,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A loader batch on ``device``, views as floats and footprints as targets; augmented there
    when ``augment`` is enabled (``generator`` on the same device)."""
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if augment is not None and augment.enabled:
        return augment_batch(batch, augment, generator)
    return prepare_batch(batch)


def iter_outputs(model: nn.Module, arrays: StudyArrays, cfg: TrainConfig, device: torch.device
                 ) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """(batch, model output) over ``arrays`` in order, in eval mode without gradients."""
    model.eval()
    loader = DataLoader(StudyDataset(arrays), batch_size=cfg.batch_size, shuffle=False)
    with torch.no_grad():
        for batch in loader:
            batch = to_device(batch, device)
            with _autocast(device, cfg.precision):
                yield batch, model(batch["images"], batch["view_ids"], batch["view_mask"])


def predict_arrays(model: nn.Module, arrays: StudyArrays, cfg: TrainConfig,
                   device: torch.device, tta_mirror: bool | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Presence (N,) and location (N, 21) probabilities, and the mean loss where labels exist."""
    tta = cfg.tta_mirror if tta_mirror is None else tta_mirror
    presence, locations, losses, weights = [], [], [], []
    for batch, out in iter_outputs(model, arrays, cfg, device):
        if batch["presence_known"].any():
            losses.append(float(multitask_loss(out, batch, cfg.loss_weights())))
            weights.append(len(batch["images"]))
        p = torch.sigmoid(out["presence"].float())
        loc = torch.sigmoid(out["locations"].float())
        if tta:
            with torch.no_grad(), _autocast(device, cfg.precision):
                m = mirror_study(batch)
                mo = model(m["images"], m["view_ids"], m["view_mask"])
            p = (p + torch.sigmoid(mo["presence"].float())) / 2
            loc = (loc + mirror_location_scores(torch.sigmoid(mo["locations"].float()))) / 2
        presence.append(p.cpu().numpy())
        locations.append(loc.cpu().numpy())
    loss = float(np.average(losses, weights=weights)) if losses else math.nan
    if not presence:
        return np.zeros(0), np.zeros((0, 21)), loss
    return np.concatenate(presence), np.concatenate(locations), loss


@dataclass(frozen=True)
class FoldResult:
    fold: int
    best_epoch: int
    select_on: str
    train_auroc: float
    val_auroc: float
    val_loss: float


def body_of(model: nn.Module) -> nn.Module:
    """The per-view network that pretraining transfers: the dense encoder-decoder or the global
    backbone."""
    return model.body if hasattr(model, "body") else model.backbone


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    body = list(body_of(model).parameters())
    body_ids = {id(p) for p in body}
    rest = [p for p in model.parameters() if id(p) not in body_ids]
    return [{"params": body, "lr": cfg.lr * cfg.body_lr_scale}, {"params": rest, "lr": cfg.lr}]


def _write_history(path: Path, history: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)


def _score(row: dict, select_on: str) -> float:
    """Higher is better."""
    value = row[select_on]
    if math.isnan(value):
        return -math.inf
    return -value if select_on == "val_loss" else value


def train_epoch(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                optimizer: torch.optim.Optimizer, cfg: TrainConfig, augment: AugmentConfig,
                generator: torch.Generator, device: torch.device
                ) -> tuple[list[float], list[np.ndarray], list[np.ndarray]]:
    """One pass over ``batches``: losses, and presence probabilities and targets where known.

    Augmentation runs here, on whole batches on ``device``; ``generator`` lives there too.
    """
    model.train()
    losses, probs, targets = [], [], []
    for batch in batches:
        batch = to_device(batch, device, augment, generator)
        with _autocast(device, cfg.precision):
            out = model(batch["images"], batch["view_ids"], batch["view_mask"])
            loss = multitask_loss(out, batch, cfg.loss_weights())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().item())
        known = batch["presence_known"]
        probs.append(torch.sigmoid(out["presence"].float())[known].detach().cpu().numpy())
        targets.append(batch["presence"][known].cpu().numpy())
        if hasattr(batches, "set_postfix"):
            batches.set_postfix(loss=f"{np.mean(losses):.3f}")
    return losses, probs, targets


def train_fold(fold_dir: Path, fold: int, make_model: Callable[[], nn.Module],
               train: StudyArrays, val: StudyArrays, cfg: TrainConfig, augment: AugmentConfig,
               metadata: dict[str, Any], progress: bool = True) -> FoldResult:
    """Train one fold, resuming from ``last.pt`` if it exists; returns the fold's summary."""
    fold_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    model = make_model().to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg), weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    history: list[dict] = []
    start = 1
    last_path, best_path = fold_dir / "last.pt", fold_dir / "best.pt"
    if last_path.is_file():
        state = read_checkpoint(last_path)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        start = state["epoch"] + 1
    dataset = StudyDataset(train)
    for epoch in range(start, cfg.epochs + 1):
        epoch_seed = cfg.seed * 100_003 + fold * 1_009 + epoch  # same result whether resumed
        set_determinism(seed=epoch_seed)
        gen = torch.Generator().manual_seed(epoch_seed)
        warp_gen = torch.Generator(device=device).manual_seed(epoch_seed)
        loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, generator=gen)
        bar = tqdm(loader, desc=f"fold {fold} epoch {epoch}/{cfg.epochs}", unit="batch",
                   leave=False, disable=not progress)
        losses, probs, targets = train_epoch(model, bar, optimizer, cfg, augment, warp_gen,
                                             device)
        lr = optimizer.param_groups[-1]["lr"]
        scheduler.step()
        vp, _, vloss = predict_arrays(model, val, cfg, device, tta_mirror=False)
        row = {
            "epoch": epoch, "lr": lr,
            "train_loss": float(np.mean(losses)) if losses else math.nan,
            "train_auroc": safe_auroc(np.concatenate(targets), np.concatenate(probs))
            if targets else math.nan,
            "val_loss": vloss,
            "val_auroc": safe_auroc(val.presence[val.presence_known], vp[val.presence_known]),
        }
        previous_best = max((_score(h, cfg.select_on) for h in history), default=-math.inf)
        history.append(row)
        if _score(row, cfg.select_on) > previous_best or not best_path.is_file():
            save_checkpoint(best_path, model, {**metadata, "fold": fold, "epoch": epoch})
        save_checkpoint(last_path, model, {**metadata, "fold": fold, "epoch": epoch},
                        optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                        history=history, epoch=epoch)
        _write_history(fold_dir / "history.csv", history)
        if progress:
            tqdm.write(f"fold {fold} epoch {epoch}: train loss {row['train_loss']:.3f} "
                       f"auroc {row['train_auroc']:.3f} | val loss {row['val_loss']:.3f} "
                       f"auroc {row['val_auroc']:.3f}")
    return finish_fold(fold_dir, fold, make_model, train, val, cfg, history, device)


def finish_fold(fold_dir: Path, fold: int, make_model: Callable[[], nn.Module],
                train: StudyArrays, val: StudyArrays, cfg: TrainConfig, history: list[dict],
                device: torch.device) -> FoldResult:
    """Out-of-fold predictions and the train/validation AUROC of the kept (best) weights."""
    model = make_model().to(device)
    model.load_state_dict(read_checkpoint(fold_dir / "last.pt")["state_dict"])
    last_p, _, _ = predict_arrays(model, val, cfg, device)  # no epoch chosen on validation
    best = read_checkpoint(fold_dir / "best.pt")
    model.load_state_dict(best["state_dict"])
    tp, _, _ = predict_arrays(model, train, cfg, device)
    vp, vloc, vloss = predict_arrays(model, val, cfg, device)
    write_predictions(fold_dir / "oof.csv", val, vp, vloc, fold, last_p)
    result = FoldResult(
        fold=fold, best_epoch=int(best["metadata"]["epoch"]), select_on=cfg.select_on,
        train_auroc=safe_auroc(train.presence[train.presence_known], tp[train.presence_known]),
        val_auroc=safe_auroc(val.presence[val.presence_known], vp[val.presence_known]),
        val_loss=vloss,
    )
    atomic_write_text(fold_dir / "summary.json", json.dumps(result.__dict__, indent=1))
    return result


def write_predictions(path: Path, arrays: StudyArrays, presence: np.ndarray,
                      locations: np.ndarray, fold: int,
                      presence_last: np.ndarray | None = None) -> None:
    """Per-study probabilities beside the labels (NaN where unknown).

    ``presence_last`` holds the final epoch's predictions: comparing them with the kept epoch's
    shows how much choosing the epoch on the validation fold flatters the OOF estimate.
    """
    import pandas as pd

    from ..schema import LOCATION_NAMES

    table = pd.DataFrame({"study_id": arrays.study_ids, "patient_id": arrays.patient_ids,
                          "fold": fold,
                          "presence_true": np.where(arrays.presence_known, arrays.presence,
                                                    np.nan),
                          "presence_prob": presence})
    if presence_last is not None:
        table["presence_prob_last_epoch"] = presence_last
    for j, name in enumerate(LOCATION_NAMES):
        table[f"{name}_true"] = np.where(arrays.location_known[:, j], arrays.locations[:, j],
                                         np.nan)
    for j, name in enumerate(LOCATION_NAMES):
        table[f"{name}_prob"] = locations[:, j]
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
