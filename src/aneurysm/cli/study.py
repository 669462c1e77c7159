"""``aneurysm study``: arms of the config side by side over seeds, and analyses of their runs.

Thin on purpose: options are parsed here and the work is ``aneurysm.studies``'s, imported
inside each command so that ``aneurysm --help`` does not pay for the studies' imports.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


def _seeds(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
           ) -> list[int] | None:
    """``--seeds 0,1,2`` or ``--seeds 0 --seeds 1``; ``--seeds 0 1 2`` is read in the command."""
    try:
        seeds = [int(v) for value in values for v in value.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"expected integers such as 0,1,2, got {values}") from None
    return seeds or None


@click.group("study")
def study_group() -> None:
    """Run studies (configs/studies/*.yaml) and take their pretraining runs apart."""


@study_group.command("run")
@click.argument("studies", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--seeds", multiple=True, callback=_seeds,
              help="Seeds: 0,1,2 or 0 1 2 (default: each study's own).")
@click.option("--arm", "arms", multiple=True,
              help="Run only this arm (repeatable); the baseline always runs.")
@click.option("--jobs", default=1, show_default=True,
              help="Runs at once, each in a process of its own with its share of the cores.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Output folder (default: runs/studies/NAME).")
@click.option("--config", "config", default=None, type=click.Path(dir_okay=False),
              help="Base experiment config for every study (default: each study's own).")
@click.option("--device", default=None, help="train.device of every run (cpu, cuda).")
@click.option("--rerun", is_flag=True, help="Run again what OUT already holds.")
@click.option("--dry-run", is_flag=True, help="Only list the runs each arm maps to.")
def study_run_cmd(studies, seeds, arms, jobs, out, config, device, rerun, dry_run) -> None:
    """Run every distinct arm of STUDIES once per seed and print their tables."""
    from ..studies.plan import describe
    from ..studies.runner import prepare, run_studies
    from ..studies.spec import load_study
    from ..studies.tables import markdown

    numbers = [p for p in studies if p.isdigit() and not Path(p).exists()]
    if numbers and not seeds:
        raise click.UsageError(f"{' '.join(numbers)}: not study files; seeds go after --seeds")
    if numbers:  # --seeds 0 1 2: click hands the 1 and the 2 over as study files
        seeds = seeds + [int(n) for n in numbers]
    loaded = [load_study(p) for p in studies if p not in numbers]
    out = Path(out or Path("runs") / "studies" / "-".join(s.name for s in loaded))
    if dry_run:
        click.echo(describe(prepare(loaded, out, seeds, jobs, list(arms), device, config)[1]))
        return
    found = run_studies(loaded, out, seeds, jobs, list(arms), rerun, device, config,
                        log=lambda line: click.echo(line, err=True))
    click.echo("\n\n".join(markdown(study, rows) for study, rows in found if rows))
    click.echo(f"\nwritten: {out}", err=True)


@study_group.command("table")
@click.argument("out", type=click.Path(file_okay=False))
def study_table_cmd(out) -> None:
    """Print (and write again) the tables of the studies in OUT."""
    from ..studies.tables import markdown, read_results, write_tables

    found = read_results(Path(out))
    for study, rows in found:
        write_tables(Path(out), study, rows)
    click.echo("\n\n".join(markdown(study, rows) for study, rows in found))


@study_group.command("diagnose")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--patch", default=24, show_default=True, help="Patch side, cache pixels.")
@click.option("--epochs", default=40, show_default=True, help="Patch CNN epochs.")
@click.option("--peaks", default=3, show_default=True,
              help="Map cells per view the two-stage reading scores.")
@click.option("--seed", default=0, show_default=True)
@click.option("--no-patches", is_flag=True,
              help="Pooling and views only: skip the patch CNN (minutes per run).")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False),
              help="Also write the figures here.")
@click.option("--montage", default=None, type=click.Path(dir_okay=False),
              help="PNG of the first run's hardest validation views and their maps.")
def study_diagnose_cmd(runs, patch, epochs, peaks, seed, no_patches, json_path,
                       montage) -> None:
    """Where pretraining's own task fails, on each pretraining RUN's validation split."""
    from ..studies.diagnose import diagnose

    results, text = diagnose([Path(r) for r in runs], not no_patches, patch, epochs, seed,
                             peaks, Path(montage) if montage else None,
                             log=lambda line: click.echo(line, err=True))
    click.echo(text)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))


@study_group.command("by-size")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False),
              help="Also write the figures here.")
def study_by_size_cmd(runs, json_path) -> None:
    """Pretraining's study and view AUROC by the aneurysm's size, per pretraining RUN."""
    from ..studies.by_size import by_size_runs

    results, text = by_size_runs([Path(r) for r in runs],
                                 log=lambda line: click.echo(line, err=True))
    click.echo(text)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))


@study_group.command("crops")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--kium", "kium_root", default=None, type=click.Path(file_okay=False),
              help="The synthetic K-ium the runs were tuned on (default: a study's "
                   "seed_N/data/kium beside each run).")
@click.option("--pretrained", is_flag=True,
              help="Score with each run's starting point (its pretraining) instead.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False),
              help="Also write the figures here.")
@click.option("--sheet", default=None, type=click.Path(dir_okay=False),
              help="Also draw the first RUN's crops on views with a sac, with their "
                   "probabilities, in this PNG.")
def study_crops_cmd(runs, kium_root, pretrained, json_path, sheet) -> None:
    """Does the second look see the aneurysm? Crops against the truth's sac positions, per
    fine-tuning RUN (synthetic K-ium only), by size."""
    from ..studies.crop_hits import crop_hits, report

    results = []
    for k, run in enumerate(runs):
        click.echo(f"{run} ...", err=True)
        results.append(crop_hits(run, kium_root, pretrained, sheet if k == 0 else None))
    click.echo(report(results))
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))
