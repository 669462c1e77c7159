"""The ``aneurysm`` command. Each command is a thin call into the library."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..config import load_config
from ..data.distributed import topology
from ..errors import AneurysmError
from ..registry import adapter_classes, get_adapter, source_root
from .demo import config_cmd, demo_cmd
from .dsa import import_dsa_cmd
from .export import export_cmd
from .options import parse_shard, speed_options
from .study import study_group
from .synth import synth_group

console = Console(stderr=False)


_ENVIRONMENT_ERRORS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS,
                       errno.EFBIG}


class UserError(click.ClickException):
    """A one-line error, exit code 2, no traceback."""

    exit_code = 2


class Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except AneurysmError as exc:
            raise UserError(str(exc)) from None
        except OSError as exc:  # the machine's fault, not ours: a denied folder, a full disk
            if exc.errno not in _ENVIRONMENT_ERRORS:
                raise
            where = exc.filename or "(unknown path)"
            raise UserError(f"{where}: {exc.strerror or exc.__class__.__name__}") from None


@click.group(cls=Group)
@click.version_option(__version__, prog_name="aneurysm")
def cli() -> None:
    """Detect and localise intracranial aneurysms on cerebral angiography."""


data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False), default=None,
    help="Folder with one sub-folder per source (kium/, rsna2025/, ...); default $ANEURYSM_DATA.")


# --- sources ----------------------------------------------------------------------------
@cli.command("sources")
@data_root_option
@click.option("--mapping", is_flag=True, help="Print how each source's labels map onto the 21.")
@click.option("--preview", type=click.Path(dir_okay=False), default=None,
              help="Save a montage of projected cases from each source found.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
@click.option("--skip-bad", is_flag=True, help="Skip unusable cases (counted) instead of failing.")
def sources_cmd(data_root, mapping, preview, cache_dir, skip_bad) -> None:
    """List the registered adapters and, for a data root, what each found."""
    from ..registry import data_root as resolve_root
    from ..sources import load_sources, summarize
    from .render import print_label_maps

    classes = adapter_classes()
    table = Table(title="registered adapters")
    for col in ("name", "folder", "module", "description"):
        table.add_column(col)
    for name, cls in classes.items():
        table.add_row(name, f"{cls.folder_name}/", cls.__module__, cls.description)
    console.print(table)
    if mapping:
        print_label_maps(console, classes)
    root = resolve_root(data_root)
    if root is None:
        return
    present = [n for n, cls in classes.items() if (root / cls.folder_name).is_dir()]
    if not present:
        raise UserError(f"{root}: no source folders ({', '.join(c.folder_name + '/' for c in classes.values())})")
    records, skipped = load_sources(present, root, skip_bad=skip_bad)
    found = Table(title=f"sources under {root}")
    for col in ("source", "cases", "positive", "unknown", "modalities", "skipped"):
        found.add_column(col, justify="right" if col in ("cases", "positive", "unknown",
                                                         "skipped") else "left")
    for name in present:
        s = summarize(name, root / classes[name].folder_name, records[name], len(skipped[name]))
        found.add_row(s.name, str(s.cases), str(s.positive), str(s.unknown), s.modalities,
                      str(s.skipped))
    console.print(found)
    if preview:
        from ..projection.preview import save_sources_preview

        config = load_config(None, {"data": {"cache_dir": cache_dir}})
        projection = config.projection.resolved(config.preprocess.image_size)
        console.print(f"preview: "
                      f"{save_sources_preview(records, preview, config.data.cache_dir, projection)}")


# --- pretrain ---------------------------------------------------------------------------
@cli.command("pretrain")
@click.option("--source", "source_names", multiple=True, default=("external",),
              show_default=True, help="'external' (all found) or adapter names, repeatable.")
@data_root_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=click.Path(file_okay=False), default="runs/pretrain",
              show_default=True)
@click.option("--epochs", type=int, default=None, help="Override train.pretrain_epochs.")
@click.option("--lr", type=click.FloatRange(0.0, min_open=True), default=None,
              help="Override train.pretrain_lr (default: train.lr).")
@click.option("--seed", type=int, default=None, help="Override train.seed.")
@click.option("--val-fraction", default=0.2, show_default=True,
              help="Per-source patient-level validation share, split before pooling.")
@click.option("--train-share", type=click.FloatRange(0.0, 1.0, min_open=True), default=1.0,
              show_default=True, help="Train on this share of each source's training patients, "
                                      "validation unchanged: a learning curve.")
@click.option("--aux-weight", type=float, default=None,
              help="Weight of the auxiliary localisation loss on projected aneurysm positions "
                   "(override loss.points; global model only; 0 = off).")
@click.option("--poses", type=click.IntRange(1), default=None,
              help="Project each volume at this many C-arm angulations, the canonical one "
                   "first; the others only train (override projection.poses).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
@click.option("--resume", is_flag=True)
@click.option("--force", is_flag=True)
@click.option("--skip-bad", is_flag=True, help="Skip unusable cases (counted) instead of failing.")
@speed_options
def pretrain_cmd(source_names, data_root, config_path, out, epochs, lr, seed, val_fraction,
                 train_share, aux_weight, poses, cache_dir, resume, force, skip_bad,
                 speed) -> None:
    """Pretrain on pooled external sources; writes OUT/pretrained.safetensors for finetune --init."""
    from ..sources import load_sources
    from ..workflows.pretrain import CHECKPOINT, pretrain
    from .render import print_source_scores

    config = load_config(config_path, {"train": {"pretrain_epochs": epochs, "pretrain_lr": lr,
                                                 "seed": seed, **speed},
                                       "loss": {"points": aux_weight},
                                       "data": {"cache_dir": cache_dir},
                                       "projection": {"poses": poses}})
    records, skipped = load_sources(list(source_names), data_root, skip_bad=skip_bad)
    for name, problems in skipped.items():
        for problem in problems:
            console.print(f"[yellow]skipped[/] ({name}): {problem}")
    scores = pretrain(out, records, config, val_fraction=val_fraction, resume=resume,
                      force=force, skip_bad=skip_bad, train_share=train_share)
    if not topology().is_main:  # under torchrun rank 0 reports
        return
    print_source_scores(console, scores, sum(len(v) for v in skipped.values()))
    from ..workflows.reporting import report_run
    from .render import print_named

    issues = json.loads((Path(out) / "pretrain_report.json").read_text())
    print_named(console, "skipped with --skip-bad", issues["skipped"] + [
        f"{p}: unreadable image" for p in issues["skipped_images"]] + [
        f"{s}: no usable view" for s in issues["dropped_studies"]])
    print_named(console, "decided while reading volumes (e.g. DICOM files set aside)",
                issues.get("decisions", []))

    console.print(f"checkpoint: {Path(out) / CHECKPOINT} (use with finetune --init); "
                  f"report: {report_run(out).html}")


# --- check ------------------------------------------------------------------------------
@cli.command("check")
@click.option("--source", default="kium", show_default=True, help="Adapter name.")
@click.option("--root", type=click.Path(), default=None, help="The source's folder.")
@data_root_option
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write every finding as JSON here.")
@click.option("--strict", is_flag=True, help="Exit non-zero on any finding at all.")
@click.option("--workers", default=0, help="Processes (0 = one per core).")
@click.option("--show", default=25, show_default=True, help="Findings to list in the terminal.")
def check_cmd(source, root, data_root, json_path, strict, workers, show) -> None:
    """The data doctor: report what is wrong with a data folder before training."""
    from ..quality import run_doctor
    from .render import print_doctor_report

    adapter = get_adapter(source)
    if not hasattr(adapter, "inspect"):
        raise UserError(f"adapter {source!r} has no data checks (no inspect method)")
    folder = source_root(adapter, root, data_root)
    report = run_doctor(adapter, folder, workers=workers or None)
    print_doctor_report(console, report, show)
    if json_path:
        report.write_json(json_path)
        console.print(f"findings written to {json_path}")
    if report.blocking(strict):
        reason = "findings (--strict)" if strict else "errors: training cannot proceed"
        console.print(f"[bold red]check failed[/]: {reason}")
        sys.exit(1)
    console.print("[bold green]check passed[/]: training can proceed")


# --- preprocess -------------------------------------------------------------------------
@cli.command("preprocess")
@click.option("--source", default="kium", show_default=True)
@click.option("--root", type=click.Path(), default=None)
@data_root_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--image-size", type=int, default=None, help="Override preprocess.image_size.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
@click.option("--skip-bad", is_flag=True, help="Warn about unreadable images instead of failing.")
@click.option("--shard", default=None, metavar="K/N",
              help="Only every N-th image from the K-th (0-based), so N machines fill one "
                   "shared cache; under torchrun, RANK/WORLD_SIZE by default.")
def preprocess_cmd(source, root, data_root, config_path, image_size, cache_dir, skip_bad,
                   shard) -> None:
    """Preprocess and cache every image of a source (parallel; a re-run is near-instant)."""
    from ..preprocessing import ImageCache

    config = load_config(config_path, {"preprocess": {"image_size": image_size},
                                       "data": {"cache_dir": cache_dir}})
    adapter = get_adapter(source)
    folder = source_root(adapter, root, data_root)
    paths = [p for split in getattr(adapter, "splits", ("train",))
             for r in _load_split(adapter, folder, split) for p in _record_paths(r)]
    k, n = parse_shard(shard)
    paths = sorted(paths)[k::n]
    cache = ImageCache(config.data.cache_dir, config.preprocess)
    errors = cache.warm(paths, workers=config.data.workers or None)
    if config.preprocess.fine():  # the second look's source, keyed alike
        fine = ImageCache(config.data.cache_dir, config.preprocess.fine())
        fine.warm([p for p in paths if p not in errors], workers=config.data.workers or None)
    for path, problem in errors.items():
        console.print(f"[yellow]warning[/]: {path}: {problem}")
    if errors and not skip_bad:
        first = next(iter(errors.items()))
        raise UserError(f"{first[0]}: {first[1]} ({len(errors)} unreadable image(s); "
                        "--skip-bad to continue without them)")
    console.print(f"{len(paths) - len(errors)} images cached in {cache.dir}"
                  + (f" (shard {k}/{n})" if n > 1 else "")
                  + (f"; {len(errors)} skipped" if errors else ""))


def _load_split(adapter, folder: Path, split: str):
    try:
        return adapter.load(folder, split)
    except AneurysmError:
        if split == "train":
            raise
        return []  # a source without a test split is fine


def _record_paths(record) -> list[str]:
    return [v.path for v in record.views if v.path]


# --- finetune / report / predict / evaluate / demo ----------------------------------------
@cli.command("finetune")
@click.option("--folds", default=5, show_default=True, help="Patient-level CV folds.")
@click.option("--source", default="kium", show_default=True)
@click.option("--root", type=click.Path(), default=None, help="The source's folder.")
@data_root_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=click.Path(file_okay=False), default="runs/finetune",
              show_default=True, help="Run folder.")
@click.option("--init", type=click.Path(dir_okay=False), default=None,
              help="Start from this `aneurysm pretrain` checkpoint (heads may differ).")
@click.option("--splits", "splits_file", type=click.Path(dir_okay=False), default=None,
              help="Use these folds (splits.json format) instead of making them.")
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--lr", type=click.FloatRange(0.0, min_open=True), default=None,
              help="Override train.lr.")
@click.option("--seed", type=int, default=None, help="Override train.seed.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last epoch.")
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
@click.option("--skip-bad", is_flag=True,
              help="Train without unreadable images (counted in the report) instead of failing.")
@speed_options
def finetune_cmd(folds, source, root, data_root, config_path, out, init, splits_file, epochs,
                 lr, seed, cache_dir, resume, force, skip_bad, speed) -> None:
    """Fine-tune with patient-level cross-validation, then write the report."""
    from ..workflows.finetune import finetune
    from .render import print_run_report

    config = load_config(config_path, {"train": {"epochs": epochs, "lr": lr, "seed": seed,
                                                 **speed},
                                       "data": {"cache_dir": cache_dir}})
    adapter = get_adapter(source)
    records = adapter.load(source_root(adapter, root, data_root), "train")
    finetune(out, records, config, folds=folds, init=init, resume=resume, force=force,
             splits_file=splits_file, skip_bad=skip_bad)
    if not topology().is_main:  # under torchrun rank 0 reports
        return
    from ..workflows.reporting import report_run

    print_run_report(console, report_run(out).report)
    from .render import print_named

    issues = json.loads((Path(out) / "data_issues.json").read_text())
    print_named(console, "skipped with --skip-bad", [
        f"{i['path']}: {i['problem']}" for i in issues["skipped_images"]] + [
        f"study {s}: no usable view" for s in issues["dropped_studies"]])
    console.print(f"run folder: {out} (report.html, report.md, report.json, plots)")


@cli.command("report")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--bootstrap", default=2000, show_default=True, help="Bootstrap resamples.")
def report_cmd(run, bootstrap) -> None:
    """Write report.html (and, for a fine-tuning run, report.md, report.json and plots)."""
    from ..workflows.reporting import report_run
    from .render import print_run_report

    files = report_run(run, bootstrap)
    if files.report is not None:
        print_run_report(console, files.report)
    console.print(f"written: {files.html}")


@cli.command("predict")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), required=True)
@click.option("--input", "input_dir", type=click.Path(), required=True,
              help="A test folder holding test.csv and images (or a K-ium root).")
@click.option("--output", type=click.Path(dir_okay=False), default="output.csv",
              show_default=True)
@click.option("--locations", type=click.Choice(["binary", "prob"]), default="binary",
              show_default=True, help="0/1 at the run's thresholds, or probabilities.")
@click.option("--tta/--no-tta", default=None, help="Left-right test-time augmentation "
                                                    "(default: the run's train.tta_mirror).")
@click.option("--maps", "maps_dir", type=click.Path(file_okay=False), default=None,
              help="Also write a PNG per patient here: its views with the aneurysm map overlaid "
                   "and the predicted locations named (dense models).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT.")
def predict_cmd(run_dir, input_dir, output, locations, tta, maps_dir, force) -> None:
    """Ensemble the fold models over a test set; write output.csv in the official format."""
    from ..inference.predict import predict_run

    records = _test_records(Path(input_dir))
    result = predict_run(run_dir, records, output, locations=locations, tta=tta, force=force,
                         maps_dir=maps_dir)
    if result.partial_studies:
        console.print(f"[yellow]warning[/]: {len(result.partial_studies)} patient(s) predicted "
                      f"from fewer than 8 views: {', '.join(result.partial_studies[:10])}")
    if result.skipped_images:
        console.print(f"[yellow]warning[/]: {len(result.skipped_images)} unreadable image(s) "
                      f"ignored: {', '.join(result.skipped_images[:5])}")
    console.print(f"wrote {result.studies} rows to {result.output} "
                  f"({result.folds}-fold ensemble)")
    if result.maps:
        console.print(f"maps: {len(result.maps)} montages in {maps_dir}")


def _test_records(input_dir: Path):
    """Accept a test folder holding test.csv, or a K-ium root containing test_set/."""
    adapter = get_adapter("kium")
    if (input_dir / "test_set" / "test.csv").is_file():
        return adapter.load(input_dir, "test")
    if not (input_dir / "test.csv").is_file():
        raise UserError(f"{input_dir}: no test.csv here (expected a test folder with test.csv "
                        "and its images)")
    return adapter.load_set(input_dir, "test")


@cli.command("evaluate")
@click.option("--truth", type=click.Path(dir_okay=False), required=True)
@click.option("--pred", type=click.Path(dir_okay=False), required=True)
@click.option("--bootstrap", default=2000, show_default=True)
@click.option("--sizes", type=click.Path(dir_okay=False), default=None,
              help="Aneurysm sizes (Index, location, radius_mm) for the AUROC by size "
                   "(default: aneurysm_sizes.csv beside TRUTH, if there is one).")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), default=None,
              help="The run that made PRED: keep the score with it and rewrite its "
                   "report.html with the held-out figures beside the CV ones.")
def evaluate_cmd(truth, pred, bootstrap, sizes, run_dir) -> None:
    """Official K-ium metrics of an output.csv against ground truth, matched by Index."""
    from ..evaluation.official import evaluate_files
    from .render import print_evaluation

    evaluation = evaluate_files(truth, pred, bootstrap, sizes)
    print_evaluation(console, evaluation)
    if run_dir:
        from ..workflows.reporting import report_run, save_evaluation

        save_evaluation(run_dir, evaluation)
        console.print(f"written: {report_run(run_dir, bootstrap).html}")


cli.add_command(synth_group)
cli.add_command(study_group)
cli.add_command(demo_cmd)
cli.add_command(import_dsa_cmd)
cli.add_command(export_cmd)
cli.add_command(config_cmd)


def main() -> None:
    cli(prog_name="aneurysm")


if __name__ == "__main__":
    main()
