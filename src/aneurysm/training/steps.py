"""What happens per training batch: augmentation on the device, precision, accumulation and
the optimiser step. Prediction (validation's too) is ``model.predict``.
"""

from __future__ import annotations

import contextlib
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ..data.batches import prepare_batch
from ..data.distributed import unwrap
from ..model.predict import autocast, resolve_device, run_model
from .augment import augment_batch
from .config import AugmentConfig, TrainConfig
from .crops import training_centres
from .losses import LossWeights, multitask_loss


def check_step_config(cfg: TrainConfig) -> None:
    """Refuse, before any file is written, step settings that cannot run here."""
    from ..data.distributed import per_rank_batch

    with autocast(resolve_device(cfg.device), cfg.precision):
        pass
    if cfg.batch_size:
        per_rank_batch(cfg.batch_size, cfg.accumulate)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A loss scaler for fp16 (whose gradients would underflow); disabled otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def to_device(batch: dict[str, torch.Tensor], device: torch.device,
              augment: AugmentConfig | None = None,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A loader batch on ``device``, views as floats and footprints as targets; augmented there
    when ``augment`` is enabled (``generator`` on the same device)."""
    host = batch.get("projected")  # still on the host: which views to re-render, no sync
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if augment is not None and augment.enabled:
        return augment_batch(batch, augment, generator, projected=host)
    return prepare_batch(batch)


def train_epoch(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                optimizer: torch.optim.Optimizer, cfg: TrainConfig, augment: AugmentConfig,
                generator: torch.Generator, device: torch.device,
                scaler: torch.amp.GradScaler | None = None,
                weights: LossWeights = LossWeights(),
                ) -> tuple[list[float], list[np.ndarray], list[np.ndarray]]:
    """One pass over ``batches``: losses, and presence probabilities and targets where known.

    Every ``cfg.accumulate`` batches make one optimiser step (under DDP the gradients are
    all-reduced only on that last one). Augmentation runs here, on whole batches on
    ``device``; ``generator`` lives there too. A step's loss and probabilities are read back
    one step late, so on a GPU the host queues the next step while the device finishes this one.
    """
    model.train()
    scaler = scaler or grad_scaler(device, cfg.precision)
    accumulate = max(cfg.accumulate, 1)
    losses: list[float] = []
    held = []  # per step, on the device: (loss, presence probabilities, targets, known)
    optimizer.zero_grad(set_to_none=True)
    pending = 0
    extra_crops = getattr(unwrap(model), "training_crops", 0)  # the second look's own crops
    for batch in batches:
        batch = to_device(batch, device, augment, generator)
        if extra_crops:
            batch["crop_centres"] = training_centres(batch, extra_crops, generator)
        pending += 1
        sync = pending == accumulate
        quiet = getattr(model, "no_sync", None)
        with (contextlib.nullcontext() if sync or quiet is None else quiet()):
            with autocast(device, cfg.precision):
                out = run_model(model, batch)
                loss = multitask_loss(out, batch, weights)
            scaler.scale(loss / accumulate).backward()
        if sync:
            _step(optimizer, scaler)
            pending = 0
        held.append((_LateValue(loss), torch.sigmoid(out["presence"].detach().float()),
                     batch["presence"], batch["presence_known"]))
        if len(held) > 1:  # the step before this one is done, or nearly: no stall
            losses.append(held[-2][0].read())
            if hasattr(batches, "set_postfix"):
                batches.set_postfix(loss=f"{np.mean(losses):.3f}")
    if pending:  # a short last group still steps, so no batch is dropped
        _step(optimizer, scaler)
    if held:
        losses.append(held[-1][0].read())
    probs, targets = [], []
    for _, p, t, known in held:
        known = known.cpu().numpy()
        probs.append(p.cpu().numpy()[known])
        targets.append(t.cpu().numpy()[known])
    return losses, probs, targets


class _LateValue:
    """A scalar on the device, read back later without draining the device's queue.

    ``float(t)`` on a GPU waits for everything queued so far, the next step included, so the
    device would idle while the host fetched the next batch. Here the value is copied to pinned
    host memory where it is produced, and reading waits only for that copy's event.
    """

    def __init__(self, value: torch.Tensor) -> None:
        value = value.detach()
        self.event = None
        if value.is_cuda:
            value = value.to("cpu", non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        self.value = value

    def read(self) -> float:
        if self.event is not None:
            self.event.synchronize()
        return float(self.value)


def _step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
