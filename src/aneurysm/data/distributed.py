"""torchrun support: one process per device, DistributedDataParallel, rank 0 writes.

Under ``torchrun --nproc_per_node N`` (``WORLD_SIZE`` > 1 in the environment) each process
trains on its share of every batch; gradients are averaged by DDP, so ``train.batch_size``
stays the number of patients per optimiser step whatever N is. Validation is sharded and the
predictions gathered, so AUROC is computed once on all of them, never averaged per rank.
Outside torchrun every helper here is a no-op and nothing is initialised.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from ..errors import ConfigError


@dataclass(frozen=True)
class Topology:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def topology() -> Topology:
    """The current process's place; (0, 1, 0) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return Topology(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", 0)))
    return Topology()


def init_from_env(device: str) -> Topology:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU); idempotent.

    Returns the topology; outside torchrun nothing happens.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return Topology()
    if not dist.is_initialized():
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return topology()


def rank_device(device: torch.device) -> torch.device:
    """Each rank's own GPU under torchrun; the CPU is shared."""
    if device.type == "cuda" and topology().distributed:
        return torch.device("cuda", topology().local_rank)
    return device


def per_rank_batch(batch_size: int, accumulate: int = 1) -> int:
    """Patients each rank feeds per forward pass so that an optimiser step sees
    ``batch_size`` patients over all ranks and accumulation steps."""
    parts = topology().world_size * max(accumulate, 1)
    if batch_size % parts:
        raise ConfigError(f"train.batch_size {batch_size} does not split evenly over "
                          f"{topology().world_size} process(es) x {accumulate} accumulation "
                          f"step(s); choose a multiple of {parts}")
    return batch_size // parts


def barrier() -> None:
    if topology().distributed:
        dist.barrier()


@contextmanager
def main_first() -> Iterator[bool]:
    """Rank 0 runs the block (and writes); the others wait until it is done, then run it too
    with ``False`` so they can read what rank 0 wrote."""
    is_main = topology().is_main
    if not is_main:
        barrier()
    yield is_main
    if is_main:
        barrier()


def gather_rows(local: np.ndarray, index: np.ndarray, total: int) -> np.ndarray:
    """Reassemble per-rank rows (``local[i]`` belongs at ``index[i]``) into one array of
    ``total`` rows on every rank, in the original order."""
    if not topology().distributed:
        out = np.empty((total,) + local.shape[1:], dtype=local.dtype)
        out[index] = local
        return out
    parts: list = [None] * topology().world_size
    dist.all_gather_object(parts, (index, local))
    out = np.empty((total,) + local.shape[1:], dtype=local.dtype)
    for idx, rows in parts:
        out[idx] = rows
    return out


def gather_list(values: list) -> list:
    """All ranks' lists, concatenated in rank order, on every rank."""
    if not topology().distributed:
        return list(values)
    parts: list = [None] * topology().world_size
    dist.all_gather_object(parts, list(values))
    return [v for part in parts for v in part]


def shard(items: list) -> list:
    """This rank's share of ``items`` (every world_size-th one), for preparing a cache in
    parallel: each rank fills its share into the one shared cache."""
    t = topology()
    return items[t.rank::t.world_size]


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model under DDP or torch.compile wrappers, whose state_dict has no
    ``module.`` or ``_orig_mod.`` prefixes."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def warm_shared(cache, paths: list[str], workers: int | None, progress: bool,
                shared: bool) -> dict[str, str]:
    """Fill ``cache`` (an ``ImageCache``) for ``paths``; returns {path: problem} of the
    unreadable ones. ``shared``: every torchrun rank calls this with the same paths, so each
    first preprocesses its share into the one cache, then reads the whole of it."""
    if shared and topology().distributed:
        cache.warm(shard(paths), workers=workers, progress=progress)
        barrier()
    return cache.warm(paths, workers=workers, progress=progress)
