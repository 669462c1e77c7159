"""Options that pretrain and finetune share: how fast and how large each step is, and where
its figures are tracked.

They only override the ``train:`` section of the config, so a YAML file can say the same.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import click


class BatchSize(click.ParamType):
    """A positive integer, or ``auto`` (stored as 0: the largest the device takes)."""

    name = "INTEGER|auto"

    def convert(self, value: Any, param, ctx) -> int:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            return 0
        try:
            size = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor 'auto'", param, ctx)
        if size < 1:
            self.fail(f"{size} must be at least 1 (or 'auto')", param, ctx)
        return size


_OPTIONS = (
    click.option("--batch-size", type=BatchSize(), default=None,
                 help="Patients per optimiser step over all processes, or 'auto' (the "
                      "largest the device takes). Overrides train.batch_size."),
    click.option("--accumulate", type=click.IntRange(min=1), default=None,
                 help="Gradient accumulation: forward passes per optimiser step."),
    click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
                 help="bf16 autocast (CPU or GPU) or fp16 with a grad scaler (GPU)."),
    click.option("--compile", "compile_model", is_flag=True, default=None,
                 help="torch.compile the model (slower first epoch; faster after on GPUs)."),
    click.option("--track", type=click.Choice(["tensorboard", "mlflow"]), multiple=True,
                 help="Also log every epoch's figures to TensorBoard (RUN/tensorboard) or "
                      "MLflow (RUN/mlflow.db); repeatable; an optional extra each."),
)


def speed_options(command: Callable) -> Callable:
    """Adds the options and hands the command one ``speed`` dict of train overrides."""

    @functools.wraps(command)
    def wrapper(*args, batch_size, accumulate, precision, compile_model, track, **kwargs):
        speed = {"batch_size": batch_size, "accumulate": accumulate, "precision": precision,
                 "compile": compile_model or None, "track": list(track) or None}
        return command(*args, speed=speed, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def parse_shard(text: str | None) -> tuple[int, int]:
    """``K/N`` -> (K, N); by default torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    if text is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected K/N, e.g. 0/4") from None
    if not 0 <= k < n:
        raise click.BadParameter(f"{text!r}: K must be in 0..N-1")
    return k, n
