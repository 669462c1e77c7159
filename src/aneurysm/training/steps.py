"""What happens per batch: precision, accumulation, the optimiser step, and prediction.

Training batches are augmented on the device; prediction is sharded over torchrun ranks and
gathered, so every rank ends with every study's probabilities in the original order.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..errors import ConfigError
from ..model.losses import multitask_loss
from .arrays import StudyArrays
from .augment import AugmentConfig, augment_batch, mirror_location_scores, mirror_study, \
    prepare_batch
from .config import TrainConfig
from .dataset import StudyDataset
from .distributed import gather_list, gather_rows, topology, unwrap

#: studies per forward pass at prediction time when train.batch_size is auto (0)
EVAL_BATCH = 8


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CPU or GPU, fp16 on GPU; fp32 is a no-op."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.precision fp16 needs a CUDA device; use bf16 on the CPU")
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def check_step_config(cfg: TrainConfig) -> None:
    """Refuse, before any file is written, step settings that cannot run here."""
    from .distributed import per_rank_batch

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
                after_step: Callable[[], None] | None = None,
                ) -> tuple[list[float], list[np.ndarray], list[np.ndarray]]:
    """One pass over ``batches``: losses, and presence probabilities and targets where known.

    Every ``cfg.accumulate`` batches make one optimiser step (under DDP the gradients are
    all-reduced only on that last one). Augmentation runs here, on whole batches on
    ``device``; ``generator`` lives there too. ``after_step`` runs after every optimiser step
    (the weight average's update). A step's loss and probabilities are read back
    one step late, so on a GPU the host queues the next step while the device finishes this one.
    """
    model.train()
    scaler = scaler or grad_scaler(device, cfg.precision)
    accumulate = max(cfg.accumulate, 1)
    losses: list[float] = []
    held = []  # per step, on the device: (loss, presence probabilities, targets, known)
    optimizer.zero_grad(set_to_none=True)
    pending = 0
    for batch in batches:
        batch = to_device(batch, device, augment, generator)
        pending += 1
        sync = pending == accumulate
        quiet = getattr(model, "no_sync", None)
        with (contextlib.nullcontext() if sync or quiet is None else quiet()):
            with autocast(device, cfg.precision):
                out = model(batch["images"], batch["view_ids"], batch["view_mask"])
                loss = multitask_loss(out, batch, cfg.loss_weights())
            scaler.scale(loss / accumulate).backward()
        if sync:
            _step(optimizer, scaler, after_step)
            pending = 0
        held.append((_LateValue(loss), torch.sigmoid(out["presence"].detach().float()),
                     batch["presence"], batch["presence_known"]))
        if len(held) > 1:  # the step before this one is done, or nearly: no stall
            losses.append(held[-2][0].read())
            if hasattr(batches, "set_postfix"):
                batches.set_postfix(loss=f"{np.mean(losses):.3f}")
    if pending:  # a short last group still steps, so no batch is dropped
        _step(optimizer, scaler, after_step)
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


def _step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
          after_step: Callable[[], None] | None) -> None:
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    if after_step is not None:
        after_step()


def iter_outputs(model: nn.Module, arrays: StudyArrays, cfg: TrainConfig, device: torch.device
                 ) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """(batch, model output) over ``arrays`` in order, in eval mode without gradients."""
    model = unwrap(model)
    model.eval()
    loader = DataLoader(StudyDataset(arrays), batch_size=cfg.batch_size or EVAL_BATCH,
                        shuffle=False)
    with torch.no_grad():
        for batch in loader:
            batch = to_device(batch, device)
            with autocast(device, cfg.precision):
                yield batch, model(batch["images"], batch["view_ids"], batch["view_mask"])


def predict_arrays(model: nn.Module, arrays: StudyArrays, cfg: TrainConfig,
                   device: torch.device, tta_mirror: bool | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Presence (N,) and location (N, 21) probabilities, and the mean loss where labels exist.

    Under torchrun each rank predicts every world_size-th study and all ranks get all rows.
    """
    t = topology()
    mine = np.arange(len(arrays))[t.rank::t.world_size]
    local = arrays.subset(mine) if t.distributed else arrays  # no copy on one process
    p, loc, loss_sum, weight = _predict_local(model, local, cfg, device, tta_mirror)
    presence = gather_rows(p, mine, len(arrays))
    locations = gather_rows(loc, mine, len(arrays))
    sums = gather_list([(loss_sum, weight)])
    total = sum(w for _, w in sums)
    loss = sum(s for s, _ in sums) / total if total else math.nan
    return presence, locations, loss


def _predict_local(model: nn.Module, arrays: StudyArrays, cfg: TrainConfig,
                   device: torch.device, tta_mirror: bool | None
                   ) -> tuple[np.ndarray, np.ndarray, float, int]:
    tta = cfg.tta_mirror if tta_mirror is None else tta_mirror
    model = unwrap(model)
    presence, locations = [np.zeros(0, np.float32)], [np.zeros((0, 21), np.float32)]
    loss_sum, weight = 0.0, 0
    for batch, out in iter_outputs(model, arrays, cfg, device):
        if batch["presence_known"].any():
            n = len(batch["images"])
            loss_sum += float(multitask_loss(out, batch, cfg.loss_weights())) * n
            weight += n
        p = torch.sigmoid(out["presence"].float())
        loc = torch.sigmoid(out["locations"].float())
        if tta:
            with torch.no_grad(), autocast(device, cfg.precision):
                m = mirror_study(batch)
                mo = model(m["images"], m["view_ids"], m["view_mask"])
            p = (p + torch.sigmoid(mo["presence"].float())) / 2
            loc = (loc + mirror_location_scores(torch.sigmoid(mo["locations"].float()))) / 2
        presence.append(p.cpu().numpy().astype(np.float32))
        locations.append(loc.cpu().numpy().astype(np.float32))
    return np.concatenate(presence), np.concatenate(locations), loss_sum, weight
