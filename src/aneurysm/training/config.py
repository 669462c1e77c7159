"""Training settings: the ``train:``, ``loss:`` and ``augment:`` sections of a YAML config.

Light on purpose: reading a config must not import MONAI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.predict import PredictOptions

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
    #: also log every epoch's figures to these (``training.tracking``): tensorboard, mlflow
    track: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {PRECISIONS}, "
                             f"not {self.precision!r}")
        if self.loader_workers < 0:
            raise ValueError("train.loader_workers must be >= 0 (0 = the main process)")
        from .tracking import TRACKERS

        unknown = [t for t in self.track if t not in TRACKERS]
        if unknown:
            raise ValueError(f"train.track: unknown tracker(s) {unknown}; choose from "
                             f"{sorted(TRACKERS)}")
        if self.batch_size < 0 or self.accumulate < 1:
            raise ValueError("train.batch_size must be >= 0 (0 = auto) and train.accumulate "
                             ">= 1")

    def predict_options(self) -> PredictOptions:
        """What prediction (validation's too) takes from these settings."""
        from ..model.predict import PredictOptions

        return PredictOptions(self.batch_size, self.precision, self.tta_mirror)


@dataclass(frozen=True)
class LossWeights:
    """The ``loss:`` section: how much each task counts. Unknown labels never count."""
    presence: float = 1.0
    locations: float = 1.0
    groups: float = 1.0  # "one of these locations" labels, by noisy-OR
    maps: float = 1.0  # dense model: focal loss per map cell where footprints are known
    views: float = 1.0  # dense model: "an aneurysm is seen in this view" where footprints say
    points: float = 0.0  # global model: auxiliary (seen, u, v) per view; 0 = off
    arteries: float = 0.0  # dense model: which artery is under each cell, where labelled; 0 = off
    #: dense model's second look: BCE per crop where its label is known (footprints, or a
    #: study without an aneurysm)
    crops: float = 1.0
    #: dense model: focal exponent of the map loss; 0 is plain BCE, which keeps pushing on
    #: cells the map already calls unlikely (vessels that are no aneurysm) where 2 lets them be
    map_gamma: float = 2.0


@dataclass(frozen=True)
class DomainConfig:
    enabled: bool = True
    mu_low: float = 0.6  # attenuation, relative to the rendered one
    mu_high: float = 1.6
    background_low: float = 0.72  # grey level of empty space, in [0, 1] (K-ium: 190-215 / 255)
    background_high: float = 0.86
    blur_max: float = 1.0  # Gaussian sigma, pixels
    residue: float = 0.02  # amplitude of a smooth random field, as misregistered subtraction


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True
    affine_prob: float = 0.8
    rotate_deg: float = 10.0
    scale: float = 0.1
    translate: float = 0.05  # fraction of the image size
    contrast_prob: float = 0.5
    contrast_gamma_low: float = 0.8
    contrast_gamma_high: float = 1.25
    noise_prob: float = 0.5
    noise_std: float = 0.02
    lr_swap: bool = True
    lr_swap_prob: float = 0.5
    #: projected external views only: re-rendered per batch (see ``domain``)
    projections: DomainConfig = field(default_factory=DomainConfig)
