"""``aneurysm export``: a fine-tuning run as ONNX graphs and a stand-alone predictor."""

from __future__ import annotations

import click
from rich.console import Console

console = Console(stderr=False)


@click.command("export")
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx",
              show_default=True, help="What to export the fold ensemble as.")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="The export folder: fold_*.onnx, model.json, predict.py, MODEL_CARD.md.")
@click.option("--force", is_flag=True, help="Replace OUT.")
def export_cmd(run, fmt, out, force) -> None:
    """Export RUN's fold models with a predictor that needs only onnxruntime, numpy, pillow and
    pandas (`python OUT/predict.py --input TEST --output output.csv`)."""
    from ..workflows.export import export_run

    result = export_run(run, out, fmt, force)
    console.print(f"exported {len(result.graphs)} fold graph(s) to {result.out} (largest "
                  f"difference from the torch models on a traced batch: "
                  f"{result.max_difference:.1e})")
    console.print(f"predict: python {result.out / 'predict.py'} --input TEST_FOLDER "
                  "--output output.csv")
