"""``train.batch_size: auto``: the per-process batch the device can take, found by trying.

On a GPU the limit is memory: the batch doubles until a training step runs out of memory or
passes 85% of the card, and the last one that fitted is kept. On a CPU memory is rarely the
limit but speed is: the batch doubles while views/s still rises by 10% or more. Either way
the probe runs real forward and backward passes on real studies, then restores the weights,
so the run trains as if the probe had never happened.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn
from torch.utils.data import default_collate

from ..data.arrays import StudyArrays
from ..data.batches import prepare_batch
from ..data.dataset import StudyDataset
from ..model.predict import run_model
from .config import TrainConfig
from .losses import LossWeights, multitask_loss

#: every loss term on, so the batch found fits whatever the run's loss section weighs
_EVERY_TASK = LossWeights(points=1.0, arteries=1.0)
#: the largest batch tried; beyond it a CPU gains nothing and a GPU run wants accumulation
MAX_AUTO_BATCH = 64


def _step(model: nn.Module, batch: dict[str, torch.Tensor], cfg: TrainConfig,
          device: torch.device) -> None:
    from ..model.predict import autocast

    with autocast(device, cfg.precision):
        out = run_model(model, batch)
        loss = multitask_loss(out, batch, _EVERY_TASK)
    loss.backward()
    model.zero_grad(set_to_none=True)


def _batch(arrays: StudyArrays, n: int, device: torch.device) -> dict[str, torch.Tensor]:
    """``n`` studies (repeated when there are fewer) collated as the training loader does."""
    data = StudyDataset(arrays)
    batch = default_collate([data[i % len(data)] for i in range(n)])
    return prepare_batch({k: v.to(device) for k, v in batch.items()})


def auto_batch_size(model: nn.Module, arrays: StudyArrays, cfg: TrainConfig,
                    device: torch.device, limit: int = MAX_AUTO_BATCH) -> int:
    """The per-process batch size to train with; the model's weights are left as they were."""
    state = copy.deepcopy(model.state_dict())
    was_training = model.training
    model.train()
    best, best_rate, size = 1, 0.0, 1
    limit = max(1, min(limit, len(arrays)))
    batch = None
    try:
        while size <= limit:
            batch = _batch(arrays, size, device)
            try:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                _step(model, batch, cfg, device)  # warm-up: allocator, kernels
                start = time.perf_counter()
                _step(model, batch, cfg, device)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
            except torch.OutOfMemoryError:
                break
            rate = size / (time.perf_counter() - start)
            if device.type == "cuda":
                total = torch.cuda.get_device_properties(device).total_memory
                if torch.cuda.max_memory_allocated(device) > 0.85 * total:
                    break
                best = size  # on a GPU bigger is better while it fits
            else:
                if rate < 1.1 * best_rate:
                    break
                best, best_rate = size, rate
            size *= 2
    finally:
        del batch
        if device.type == "cuda":
            torch.cuda.empty_cache()
        model.load_state_dict(state)
        model.train(was_training)
    return best
