"""``aneurysm import-dsa``: a folder of X-ray angiography DICOM runs into the K-ium layout."""

from __future__ import annotations

import click
from rich.console import Console

from .render import print_named

console = Console(stderr=False)


@click.command("import-dsa")
@click.argument("runs_root", type=click.Path(file_okay=False, exists=True))
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="The K-ium root to write (train_set/ with --labels, test_set/ without).")
@click.option("--runs", "runs_table", type=click.Path(dir_okay=False), default=None,
              help="CSV of file, Index, injection (LI, RI, LV, RV) per run; default "
                   "RUNS_ROOT/runs.csv. The injected vessel is not in the DICOM tags.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="K-ium's 23-column label CSV for these patients (makes a training set).")
@click.option("--frame", "rule", type=click.Choice(["peak", "minimum"]), default="peak",
              show_default=True, help="The frame of peak arterial contrast, or each pixel's "
                                      "darkest value over the arterial phase.")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable runs (named) instead of failing.")
@click.option("--force", is_flag=True, help="Replace OUT.")
def import_dsa_cmd(runs_root, out, runs_table, labels, rule, skip_bad, force) -> None:
    """Turn DSA runs into a K-ium root that every other command reads."""
    from ..workflows.import_dsa import import_dsa

    result = import_dsa(runs_root, out, runs_table, labels, rule, skip_bad, force)
    print_named(console, "skipped with --skip-bad", result.skipped)
    print_named(console, "not used (a second run of one view)", result.duplicates)
    console.print(f"wrote {result.views} views of {result.patients} patients to {result.root}")
