"""One fold: epochs of training with per-epoch metrics, best/last checkpoints, resume."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from monai.utils import set_determinism
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..data.arrays import StudyArrays
from ..data.dataset import StudyDataset
from ..data.distributed import (
    barrier,
    gather_list,
    per_rank_batch,
    rank_device,
    topology,
)
from ..io.atomic import atomic_path, atomic_write_text
from ..metrics import safe_auroc
from ..model.checkpoint import checkpoint_path, read_checkpoint, save_checkpoint
from ..model.predict import predict_arrays, resolve_device
from .batch_size import auto_batch_size
from .config import AugmentConfig, TrainConfig
from .losses import LossWeights, multitask_loss
from .steps import grad_scaler, train_epoch
from .tracking import Trackers

HISTORY_FIELDS = ("epoch", "lr", "train_loss", "train_auroc", "val_loss", "val_auroc")


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


def resolve_batch_size(model: nn.Module, train: StudyArrays, cfg: TrainConfig,
                       device: torch.device) -> TrainConfig:
    """``batch_size: auto`` (0) made concrete: the per-process batch the device takes, times
    the processes and accumulation steps; all ranks agree on the smallest one found."""
    if cfg.batch_size:
        return cfg
    local = auto_batch_size(model, train, cfg, device)
    chosen = min(gather_list([local]))
    total = chosen * topology().world_size * max(cfg.accumulate, 1)
    if topology().is_main:
        tqdm.write(f"batch size auto: {chosen} per process x {topology().world_size} "
                   f"process(es) x {cfg.accumulate} accumulation = {total} patients per step")
    return dataclasses.replace(cfg, batch_size=total)


def prepare_model(model: nn.Module, cfg: TrainConfig, device: torch.device) -> nn.Module:
    """DDP under torchrun, then torch.compile if asked; checkpoints always ``unwrap`` it."""
    if topology().distributed:
        # heads whose loss weight is 0 (points, arteries) get no gradient: tell DDP so
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)
    if cfg.compile:
        model = torch.compile(model)
    return model


def train_fold(fold_dir: Path, fold: int, make_model: Callable[[], nn.Module],
               train: StudyArrays, val: StudyArrays, cfg: TrainConfig, augment: AugmentConfig,
               metadata: dict[str, Any], progress: bool = True,
               weights: LossWeights = LossWeights(), tracker: Trackers | None = None,
               track_as: str | None = None) -> FoldResult:
    """Train one fold, resuming from ``last.safetensors`` (or an older run's ``last.pt``) if it exists; returns the fold's summary.

    Under torchrun every rank trains on its share of each batch and rank 0 alone writes.
    ``tracker`` (rank 0's) gets each epoch's history row as ``track_as`` (default fold_K).
    """
    world = topology()
    progress = progress and world.is_main
    if world.is_main:
        fold_dir.mkdir(parents=True, exist_ok=True)
    barrier()
    device = rank_device(resolve_device(cfg.device))
    model = make_model().to(device)
    history: list[dict] = []
    start = 1
    last_path, best_path = checkpoint_path(fold_dir, "last"), checkpoint_path(fold_dir, "best")
    state = read_checkpoint(last_path) if last_path.is_file() else None
    if state is not None:
        cfg = dataclasses.replace(cfg, batch_size=state.get("batch_size", cfg.batch_size))
    cfg = resolve_batch_size(model, train, cfg, device)
    metadata = {**metadata, "batch_size": cfg.batch_size}
    optimizer = torch.optim.AdamW(_param_groups(model, cfg), weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    scaler = grad_scaler(device, cfg.precision)
    if state is not None:
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        history = state["history"]
        start = state["epoch"] + 1
    net = prepare_model(model, cfg, device)
    options = cfg.predict_options()
    loss = functools.partial(multitask_loss, weights=weights)
    dataset = StudyDataset(train)
    micro = per_rank_batch(cfg.batch_size, cfg.accumulate)
    fold_seed = cfg.seed * 100_003 + fold * 1_009
    # one permutation per epoch for all ranks (rank r takes every world_size-th), so N
    # processes see the same patients per step as one process with the whole batch; it is
    # drawn from fold_seed + epoch, so a resumed run sees the same order
    sampler = DistributedSampler(dataset, num_replicas=world.world_size, rank=world.rank,
                                 shuffle=True, seed=fold_seed)
    loader = DataLoader(dataset, batch_size=micro, sampler=sampler,
                        num_workers=cfg.loader_workers, pin_memory=device.type == "cuda")
    # workers are started per epoch, not kept: a kept iterator skips the seed draw that every
    # new one takes from the global RNG, and the dropout draws after it would shift
    for epoch in range(start, cfg.epochs + 1):
        epoch_seed = fold_seed + epoch  # same result whether resumed
        set_determinism(seed=epoch_seed + world.rank)
        sampler.set_epoch(epoch)
        warp_gen = torch.Generator(device=device).manual_seed(epoch_seed + 7_919 * world.rank)
        bar = tqdm(loader, desc=f"fold {fold} epoch {epoch}/{cfg.epochs}", unit="batch",
                   leave=False, disable=not progress)
        losses, probs, targets = train_epoch(net, bar, optimizer, cfg, augment, warp_gen,
                                             device, scaler, weights)
        lr = optimizer.param_groups[-1]["lr"]
        scheduler.step()
        losses, probs, targets = (gather_list(x) for x in (losses, probs, targets))
        vp, _, vloss = predict_arrays(model, val, options, device, tta_mirror=False,
                                      loss=loss)
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
        if world.is_main:
            if _score(row, cfg.select_on) > previous_best or not best_path.is_file():
                save_checkpoint(best_path, model,
                                {**metadata, "fold": fold, "epoch": epoch})
            save_checkpoint(last_path, model, {**metadata, "fold": fold, "epoch": epoch},
                            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                            scaler=scaler.state_dict(), history=history, epoch=epoch,
                            batch_size=cfg.batch_size)
            _write_history(fold_dir / "history.csv", history)
            if tracker is not None:
                tracker.log_epoch(track_as or f"fold_{fold}", row)
        barrier()
        if progress:
            tqdm.write(f"fold {fold} epoch {epoch}: train loss {row['train_loss']:.3f} "
                       f"auroc {row['train_auroc']:.3f} | val loss {row['val_loss']:.3f} "
                       f"auroc {row['val_auroc']:.3f}")
    return finish_fold(fold_dir, fold, make_model, train, val, cfg, history, device, loss)


def finish_fold(fold_dir: Path, fold: int, make_model: Callable[[], nn.Module],
                train: StudyArrays, val: StudyArrays, cfg: TrainConfig, history: list[dict],
                device: torch.device, loss: Callable | None = None) -> FoldResult:
    """Out-of-fold predictions and the train/validation AUROC of the kept (best) weights."""
    model = make_model().to(device)
    model.load_state_dict(read_checkpoint(checkpoint_path(fold_dir, "last"))["state_dict"])
    options = cfg.predict_options()
    last_p, _, _ = predict_arrays(model, val, options, device)  # no epoch chosen on validation
    best = read_checkpoint(checkpoint_path(fold_dir, "best"))
    model.load_state_dict(best["state_dict"])
    tp, _, _ = predict_arrays(model, train, options, device)
    vp, vloc, vloss = predict_arrays(model, val, options, device, loss=loss)
    result = FoldResult(
        fold=fold, best_epoch=int(best["metadata"]["epoch"]), select_on=cfg.select_on,
        train_auroc=safe_auroc(train.presence[train.presence_known], tp[train.presence_known]),
        val_auroc=safe_auroc(val.presence[val.presence_known], vp[val.presence_known]),
        val_loss=vloss,
    )
    if topology().is_main:
        write_predictions(fold_dir / "oof.csv", val, vp, vloc, fold, last_p)
        atomic_write_text(fold_dir / "summary.json", json.dumps(result.__dict__, indent=1))
    barrier()
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
