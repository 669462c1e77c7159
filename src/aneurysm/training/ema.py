"""An exponential moving average of the weights (``train.ema_decay``), which validation,
checkpoints and predictions read in place of the last step's weights.

With a few hundred patients and batches of four, the weights after any one step carry that
step's noise; their running average over the last ~1/(1 - decay) steps does not. Built on
torch's ``AveragedModel`` (parameters and BatchNorm statistics alike).
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .distributed import unwrap


class WeightAverage:
    """The averaged copy of ``model``; ``decay`` 0 turns it off (``module`` is the model)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = model
        self.averaged = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay),
                                       use_buffers=True) if decay > 0 else None)

    @property
    def module(self) -> nn.Module:
        """What to validate and save: the average when on, else the trained model."""
        return self.averaged.module if self.averaged is not None else self.model

    def update(self) -> None:
        """Fold the model's current weights into the average (after an optimiser step)."""
        if self.averaged is not None:
            self.averaged.update_parameters(unwrap(self.model))

    def state(self) -> dict[str, Any]:
        """What a resumable checkpoint needs besides the averaged weights it saves."""
        if self.averaged is None:
            return {}
        return {"trained_state_dict": unwrap(self.model).state_dict(),
                "ema_steps": int(self.averaged.n_averaged)}

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Resume from a ``last.pt``: its ``state_dict`` holds what ``module`` held, and the
        trained weights are kept beside it (absent in a checkpoint written without averaging,
        whose weights are both)."""
        unwrap(self.model).load_state_dict(checkpoint.get("trained_state_dict",
                                                          checkpoint["state_dict"]))
        if self.averaged is not None:
            self.averaged.module.load_state_dict(checkpoint["state_dict"])
            self.averaged.n_averaged.fill_(int(checkpoint.get("ema_steps", 0)))
