"""Running a model over study arrays: device and precision, batched forward passes in eval mode,
and presence and location probabilities with left-right test-time mirroring.

Training validates with it and ``aneurysm predict`` predicts with it, so it lives beside the
models rather than in either. Under torchrun each rank predicts every world_size-th study and
all ranks end with every row, in the original order.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.arrays import StudyArrays
from ..data.batches import mirror_location_scores, mirror_study, prepare_batch
from ..data.dataset import StudyDataset
from ..data.distributed import gather_list, gather_rows, topology, unwrap
from ..errors import ConfigError
from ..schema import NUM_LOCATIONS

#: studies per forward pass at prediction time when train.batch_size is auto (0)
EVAL_BATCH = 8

#: a batch and the model's output -> the batch's mean loss (validation's loss)
LossFn = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class PredictOptions:
    """What prediction needs of the training settings."""
    batch_size: int = 0  # studies per forward pass; 0 = EVAL_BATCH
    precision: str = "fp32"
    tta_mirror: bool = True  # average with the left-right mirrored study


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


#: batch keys a model reads beside its views, view ids and view mask, passed where a batch has
#: them: the second look's fine views and their warp, and in training its extra crop centres
MODEL_EXTRAS = ("fine", "fine_theta", "crop_centres")


def run_model(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's output on a prepared batch."""
    return model(batch["images"], batch["view_ids"], batch["view_mask"],
                 **{k: batch[k] for k in MODEL_EXTRAS if k in batch})


def batch_on(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A loader batch on ``device``, views as floats and footprints as targets."""
    return prepare_batch({k: v.to(device, non_blocking=True) for k, v in batch.items()})


def iter_outputs(model: nn.Module, arrays: StudyArrays, options: PredictOptions,
                 device: torch.device
                 ) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """(batch, model output) over ``arrays`` in order, in eval mode without gradients."""
    model = unwrap(model)
    model.eval()
    loader = DataLoader(StudyDataset(arrays), batch_size=options.batch_size or EVAL_BATCH,
                        shuffle=False)
    with torch.no_grad():
        for batch in loader:
            batch = batch_on(batch, device)
            with autocast(device, options.precision):
                yield batch, run_model(model, batch)


def predict_arrays(model: nn.Module, arrays: StudyArrays, options: PredictOptions,
                   device: torch.device, tta_mirror: bool | None = None,
                   loss: LossFn | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Presence (N,) and location (N, 21) probabilities, and the mean ``loss`` where labels
    exist (NaN without one)."""
    t = topology()
    mine = np.arange(len(arrays))[t.rank::t.world_size]
    local = arrays.subset(mine) if t.distributed else arrays  # no copy on one process
    p, loc, loss_sum, weight = _predict_local(model, local, options, device, tta_mirror, loss)
    presence = gather_rows(p, mine, len(arrays))
    locations = gather_rows(loc, mine, len(arrays))
    sums = gather_list([(loss_sum, weight)])
    total = sum(w for _, w in sums)
    mean = sum(s for s, _ in sums) / total if total else math.nan
    return presence, locations, mean


def _predict_local(model: nn.Module, arrays: StudyArrays, options: PredictOptions,
                   device: torch.device, tta_mirror: bool | None, loss: LossFn | None
                   ) -> tuple[np.ndarray, np.ndarray, float, int]:
    tta = options.tta_mirror if tta_mirror is None else tta_mirror
    model = unwrap(model)
    presence = [np.zeros(0, np.float32)]
    locations = [np.zeros((0, NUM_LOCATIONS), np.float32)]
    loss_sum, weight = 0.0, 0
    for batch, out in iter_outputs(model, arrays, options, device):
        if loss is not None and batch["presence_known"].any():
            n = len(batch["images"])
            loss_sum += float(loss(out, batch)) * n
            weight += n
        p = torch.sigmoid(out["presence"].float())
        loc = torch.sigmoid(out["locations"].float())
        if tta:
            with torch.no_grad(), autocast(device, options.precision):
                m = mirror_study(batch)
                mo = run_model(model, m)
            p = (p + torch.sigmoid(mo["presence"].float())) / 2
            loc = (loc + mirror_location_scores(torch.sigmoid(mo["locations"].float()))) / 2
        presence.append(p.cpu().numpy().astype(np.float32))
        locations.append(loc.cpu().numpy().astype(np.float32))
    return np.concatenate(presence), np.concatenate(locations), loss_sum, weight
