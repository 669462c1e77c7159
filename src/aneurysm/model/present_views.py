"""Run a per-view network on the views a batch has, never on the absent ones.

Both models skip absent views (zeros would shift batch statistics in training and cost time).
A traced graph (``aneurysm export``) has no data-dependent branch, so there every view runs
and the absent ones are masked afterwards: in eval mode each view's output is its own, so
the result is the same.
"""

from __future__ import annotations

from typing import Callable

import torch


def exporting() -> bool:
    """Traced for ONNX (``aneurysm export``) rather than run."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def on_present_views(body: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
                     views: torch.Tensor, present: torch.Tensor,
                     absent: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """``body``'s outputs on ``views`` (N, ...) where ``present`` (N,) holds, ``absent``'s
    rows (the values an absent view gets, one tensor per output) elsewhere."""
    if exporting():
        outputs = body(views)
        return tuple(torch.where(present.reshape(-1, *[1] * (a.dim() - 1)), o.to(a.dtype), a)
                     for o, a in zip(outputs, absent))
    if not present.any():
        return absent
    index = present.nonzero()[:, 0]
    outputs = body(views[index])
    # out of place: an in-place masked write has a backward torch.compile cannot trace
    return tuple(a.index_copy(0, index, o.to(a.dtype)) for o, a in zip(outputs, absent))
