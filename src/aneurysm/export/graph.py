"""One fold's model as an ONNX graph: uint8 views in, presence and location probabilities out,
the left-right test-time mirror inside, exactly as ``aneurysm predict`` runs it.

The graph starts from the uint8 views so that a predictor outside this package has nothing to
reproduce but the image cleaning (``standalone.py``). The dynamo exporter (torch.export, then
onnxscript) is used: the TorchScript one has no ``expm1``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..data.batches import mirror_location_scores, mirror_study, prepare_batch
from ..model.predict import run_model

#: the opset the graphs are written in: GridSample (the second look) needs 16 or later
OPSET = 18
INPUTS = ("images", "view_ids", "view_mask")
OUTPUTS = ("presence", "locations")


class ExportedFold(nn.Module):
    """A fold model with prediction's batch preparation and mirroring around it."""

    def __init__(self, model: nn.Module, tta: bool) -> None:
        super().__init__()
        self.model, self.tta = model.eval(), tta

    def forward(self, images: torch.Tensor, view_ids: torch.Tensor, view_mask: torch.Tensor,
                fine: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {"images": images, "view_ids": view_ids, "view_mask": view_mask}
        if fine is not None:
            batch["fine"] = fine
        batch = prepare_batch(batch)
        out = run_model(self.model, batch)
        presence = torch.sigmoid(out["presence"].float())
        locations = torch.sigmoid(out["locations"].float())
        if self.tta:
            mirrored = run_model(self.model, mirror_study(batch))
            presence = (presence + torch.sigmoid(mirrored["presence"].float())) / 2
            locations = (locations + mirror_location_scores(
                torch.sigmoid(mirrored["locations"].float()))) / 2
        return presence, locations


def example_inputs(views: int, size: int, fine_size: int = 0, batch: int = 2
                   ) -> tuple[torch.Tensor, ...]:
    """A batch of the graph's inputs to trace with: one view absent, so the mask is used."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, views, size, size), dtype=torch.uint8, generator=g)
    view_ids = torch.arange(views).repeat(batch, 1)
    view_mask = torch.ones(batch, views, dtype=torch.bool)
    view_mask[-1, -1] = False
    if not fine_size:
        return images, view_ids, view_mask
    fine = torch.randint(0, 256, (batch, views, fine_size, fine_size), dtype=torch.uint8,
                         generator=g)
    return images, view_ids, view_mask, fine


def export_fold(model: nn.Module, path: str | Path, views: int, size: int, fine_size: int = 0,
                tta: bool = True) -> list[str]:
    """Write one fold's graph to ``path``; returns its input names. The batch is dynamic."""
    wrapped = ExportedFold(model, tta)
    args = example_inputs(views, size, fine_size)
    names = [*INPUTS, "fine"][:len(args)]
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = tuple({0: batch} for _ in args)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(wrapped, args, dynamic_shapes=shapes, input_names=names,
                                    output_names=list(OUTPUTS), opset_version=OPSET,
                                    dynamo=True, verbose=False, report=False)
        program.save(str(path))
    return names
