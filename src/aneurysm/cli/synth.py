"""``aneurysm synth``: synthetic data sets in each source's exact layout."""

from __future__ import annotations

import click
from rich.console import Console

console = Console(stderr=False)


@click.group("synth")
def synth_group() -> None:
    """Write synthetic data sets in each source's exact layout."""


@synth_group.command("kium")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--patients", default=200, show_default=True, help="Training patients.")
@click.option("--test", "test", default=50, show_default=True, help="Test patients.")
@click.option("--seed", default=0, show_default=True)
@click.option("--image-size", default=512, show_default=True, help="Rendered size in pixels.")
@click.option("--messy", is_flag=True,
              help="Reproduce the real data's mess: mixed sizes, 3-channel files, border bands "
                   "with text, a duplicate upload.")
@click.option("--preview", type=click.Path(dir_okay=False), default=None,
              help="Also save a montage PNG of one positive patient's eight views.")
@click.option("--workers", default=0, help="Processes (0 = one per core).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def synth_kium_cmd(out, patients, test, seed, image_size, messy, preview, workers, force) -> None:
    """Render a synthetic K-ium root into OUT (train_set/, test_set/, groundtruth.csv)."""
    from ..synth.kium import SynthConfig, save_preview, write_kium

    config = SynthConfig(patients=patients, test=test, seed=seed, image_size=image_size,
                         messy=messy)
    root = write_kium(out, config, force=force, workers=workers or None)
    console.print(f"wrote {patients} training and {test} test patients to {root}")
    if preview:
        console.print(f"preview: {save_preview(root, preview)}")


@synth_group.command("external")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--rsna", default=16, show_default=True, help="RSNA 2025 series.")
@click.option("--adam", default=10, show_default=True, help="ADAM cases.")
@click.option("--lausanne", default=10, show_default=True, help="Lausanne sessions.")
@click.option("--cada", default=6, show_default=True, help="CADA cases.")
@click.option("--topcow", default=4, show_default=True,
              help="TopCoW patients (a CTA and an MRA each, artery labels, no aneurysm).")
@click.option("--seed", default=0, show_default=True)
@click.option("--spacing", default=1.5, show_default=True, help="Voxel size, mm.")
@click.option("--workers", default=0, help="Processes (0 = one per core).")
@click.option("--force", is_flag=True, help="Replace existing source folders in OUT.")
def synth_external_cmd(out, rsna, adam, lausanne, cada, topcow, seed, spacing, workers,
                       force) -> None:
    """Render the same anatomy as 3-D volumes in each external source's layout under OUT."""
    from ..synth.external import ExternalSynthConfig, write_external

    config = ExternalSynthConfig(rsna=rsna, adam=adam, lausanne=lausanne, cada=cada,
                                 topcow=topcow, seed=seed, spacing=spacing)
    write_external(out, config, force=force, workers=workers or None)
    console.print(f"wrote rsna2025/ ({rsna}), adam/ ({adam}), lausanne/ ({lausanne}), "
                  f"cada/ ({cada}), topcow/ ({topcow} patients x CTA + MRA) under {out}")


@synth_group.command("dsa")
@click.argument("kium_root", type=click.Path(file_okay=False, exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--split", type=click.Choice(["train", "test"]), default="train",
              show_default=True)
@click.option("--frames", default=12, show_default=True, help="Frames per run.")
@click.option("--seed", default=0, show_default=True)
def synth_dsa_cmd(kium_root, out, split, frames, seed) -> None:
    """Turn a synthetic K-ium root's views into DSA runs: multi-frame X-ray angiography
    DICOM, contrast arriving and washing out, half stored unsubtracted (for import-dsa)."""
    from ..synth.dsa_runs import write_dsa_runs

    root = write_dsa_runs(kium_root, out, split=split, frames=frames, seed=seed)
    console.print(f"wrote DSA runs, runs.csv and labels to {root}")
