"""Training settings (the ``train:`` section of a YAML config)."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.losses import LossWeights


PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # fine-tuning, per fold
    pretrain_epochs: int = 20  # ``aneurysm pretrain`` on the pooled external sources
    #: patients per optimiser step (x 8 views), over all torchrun ranks and accumulation
    #: steps; 0 = "auto": the largest that fits the device (see ``batch_size.auto_batch_size``)
    batch_size: int = 4
    accumulate: int = 1  # gradient accumulation: forward passes per optimiser step
    lr: float = 2e-3
    pretrain_lr: float = 0.0  # ``aneurysm pretrain``'s learning rate; 0 = lr
    body_lr_scale: float = 1.0  # the backbone's LR = lr x this; < 1 keeps a pretrained body close
    weight_decay: float = 1e-4
    #: validate, keep and predict with an exponential moving average of the weights, decayed
    #: by this much per optimiser step (0 = off, the last step's weights)
    ema_decay: float = 0.0
    seed: int = 0
    select_on: str = "val_loss"  # which epoch's weights a fold keeps: val_loss or val_auroc
    device: str = "auto"  # auto, cpu, cuda
    precision: str = "fp32"  # fp32; bf16 (autocast, CPU or GPU); fp16 (GPU, with a grad scaler)
    compile: bool = False  # torch.compile the model (slow first epoch, faster after on GPUs)
    threads: int = 0  # torch CPU threads; 0 = torch's default
    #: training batches sliced and collated by this many worker processes (0: the main
    #: process); 4 were no faster on an H200, where the main process keeps up
    loader_workers: int = 0
    tta_mirror: bool = True  # average with the left-right mirrored study at prediction time
    map_loss_weight: float = 1.0  # dense head: per-cell footprint loss where sources say where
    map_focal_gamma: float = 2.0  # dense head: focal exponent of the map loss; 0 = plain BCE
    #: dense head: the map loss is divided by the batch's aneurysm cells, but by at least this
    #: many per view with known cells (0: at least 1, CenterNet's count)
    map_loss_floor: float = 0.0
    #: dense head: every view's aneurysm cells carry the same total weight, whatever the size
    map_loss_balance: bool = False
    view_loss_weight: float = 1.0  # dense head: per-view "aneurysm seen" where footprints say
    artery_loss_weight: float = 0.0  # dense head: which artery is under each cell, where labelled
    aux_point_weight: float = 0.0  # global head: auxiliary point loss where positions exist

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {PRECISIONS}, "
                             f"not {self.precision!r}")
        if self.map_loss_floor < 0:
            raise ValueError("train.map_loss_floor must be >= 0 (0 = CenterNet's count)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay must be in [0, 1) (0 = off), not {self.ema_decay}")
        if self.loader_workers < 0:
            raise ValueError("train.loader_workers must be >= 0 (0 = the main process)")
        if self.batch_size < 0 or self.accumulate < 1:
            raise ValueError("train.batch_size must be >= 0 (0 = auto) and train.accumulate "
                             ">= 1")

    def loss_weights(self) -> LossWeights:
        return LossWeights(maps=self.map_loss_weight, map_gamma=self.map_focal_gamma,
                           map_floor=self.map_loss_floor, map_balance=self.map_loss_balance,
                           views=self.view_loss_weight,
                           points=self.aux_point_weight, arteries=self.artery_loss_weight)
