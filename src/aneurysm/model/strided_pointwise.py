"""Strided 1x1 convolutions that channels-last training on the CPU can trust.

oneDNN's strided 1x1 convolution writes out of bounds in its channels-last weight gradient when
a layer has fewer input channels than the CPU's block (16 with AVX-512; oneDNN issue 6035):
a width-8 encoder crashed, or trained on wrong gradients, with an odd number of present views.
Every s-th pixel through a 1x1 convolution of stride 1 is the same function with the same
weights, and never reaches that kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SubsampledPointwise(nn.Conv2d):
    """A 1x1 convolution of stride s, computed as every s-th pixel through a 1x1 convolution of
    stride 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x[..., ::self.stride[0], ::self.stride[1]], self.weight, self.bias)


def subsample_pointwise(module: nn.Module) -> None:
    """Swap every plain strided, unpadded 1x1 ``nn.Conv2d`` under ``module`` for
    ``SubsampledPointwise`` (subclasses, which may pad or quantise, are left alone)."""
    for name, child in module.named_children():
        if (type(child) is nn.Conv2d and child.kernel_size == (1, 1)
                and child.stride != (1, 1) and child.padding == (0, 0)
                and child.dilation == (1, 1) and child.groups == 1
                and child.padding_mode == "zeros"):
            # built without initialising (that would draw from the global generator and shift
            # every later draw of a seeded run), then given the convolution's own weights
            swapped = nn.utils.skip_init(SubsampledPointwise, child.in_channels,
                                         child.out_channels, 1, stride=child.stride,
                                         bias=child.bias is not None,
                                         device=child.weight.device, dtype=child.weight.dtype)
            swapped.load_state_dict(child.state_dict())
            setattr(module, name, swapped)
        else:
            subsample_pointwise(child)
