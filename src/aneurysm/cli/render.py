"""Terminal rendering of library results (tables), kept out of the library itself."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..quality import DoctorReport

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_doctor_report(console: Console, report: DoctorReport, show: int) -> None:
    counts = report.counts
    console.print(f"[bold]{report.source}[/] at {report.root}: {report.n_images} images; "
                  f"{counts['error']} errors, {counts['warning']} warnings, {counts['info']} info")
    if report.by_code:
        summary = Table(title="findings by kind")
        summary.add_column("kind")
        summary.add_column("count", justify="right")
        summary.add_column("severity")
        severity = {f.code: f.severity for f in report.findings}
        for code, n in report.by_code.items():
            summary.add_row(code, str(n), f"[{_STYLE[severity[code]]}]{severity[code]}[/]")
        console.print(summary)
    if report.sizes:
        sizes = Table(title="image sizes (width x height)")
        sizes.add_column("size")
        sizes.add_column("images", justify="right")
        for (w, h), n in report.sizes.most_common(10):
            sizes.add_row(f"{w}x{h}", str(n))
        if len(report.sizes) > 10:
            sizes.add_row("...", str(sum(report.sizes.values()) - sum(
                n for _, n in report.sizes.most_common(10))))
        console.print(sizes)
        channels = ", ".join(f"{n} with {c} channel(s)" for c, n in sorted(report.channels.items()))
        console.print(f"channels: {channels}")
    for f in report.findings[:show]:
        console.print(f"[{_STYLE[f.severity]}]{f.severity:7}[/] {f.code:22} {f.path}: {f.message}",
                      highlight=False, soft_wrap=True)
    if len(report.findings) > show:
        console.print(f"... {len(report.findings) - show} more (see --json)")


def _f(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def _measure_table(title: str) -> Table:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    return table


def _cv_rows(table: Table, r) -> None:
    table.add_row("CV presence AUROC, pooled OOF [95% CI]", str(r.presence))
    table.add_row("  same, final epoch (no selection on val)", str(r.presence_last_epoch))
    table.add_row("CV presence AUROC per fold (mean ± sd)", f"{_f(r.fold_mean)} ± {_f(r.fold_sd)}")
    table.add_row("train - validation AUROC gap (mean)", _f(r.mean_gap))


def print_run_report(console: Console, r) -> None:
    table = _measure_table(f"cross-validated result ({len(r.folds)} folds, {r.n_studies} studies)")
    _cv_rows(table, r)
    table.add_row("location accuracy (all-zeros baseline)",
                  f"{_f(r.official['location_accuracy'])} "
                  f"({_f(r.official['location_accuracy_all_zeros'])})")
    table.add_row("Brier score", _f(r.brier))
    if r.skipped_images or r.dropped_studies:
        table.add_row("skipped with --skip-bad", f"{r.skipped_images} images, "
                                                 f"{r.dropped_studies} studies")
    console.print(table)


def print_evaluation(console: Console, e) -> None:
    table = Table(title=f"evaluation on {e.n} patients (matched by Index)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("presence AUROC [95% CI]", str(e.presence))
    table.add_row("location accuracy", _f(e.official["location_accuracy"]))
    table.add_row("location accuracy, all zeros", _f(e.official["location_accuracy_all_zeros"]))
    console.print(table)
    loc = Table(title="per location (n/a: fewer than 2 positives)")
    for col in ("location", "positives", "AUROC", "AP"):
        loc.add_column(col)
    for s in e.locations:
        loc.add_row(s.name, str(s.positives), _f(s.auroc), _f(s.average_precision))
    console.print(loc)
    print_by_size(console, e.by_size)
    print_by_size(console, e.locations_by_size, locations=True)


def print_by_size(console: Console, scores, locations: bool = False) -> None:
    """The presence (or the pooled location) AUROC by aneurysm size, where the truth knew
    sizes (else nothing)."""
    if not any(s.positives for s in scores):
        return
    sizes = Table(title="held-out location AUROC by the radius of the aneurysm at each "
                        "location (pooled over locations; each bin's aneurysms against every "
                        "empty location)" if locations else
                        "held-out AUROC by the largest aneurysm's radius (each bin's positives "
                        "against every negative)")
    heads = ("aneurysms", "empty locations") if locations else ("positives", "negatives")
    for col in ("radius", *heads, "AUROC [95% CI]"):
        sizes.add_column(col, justify="left" if col == "radius" else "right")
    for s in scores:
        sizes.add_row(s.label, str(s.positives), str(s.negatives), str(s.auroc))
    console.print(sizes)


def print_demo(console: Console, d) -> None:
    table = _measure_table(f"demo finished in {d.seconds / 60:.1f} min ({d.out})")
    _cv_rows(table, d.report)
    table.add_row(f"held-out test AUROC ({d.held_out.n} patients) [95% CI]",
                  str(d.held_out.presence))
    table.add_row("held-out mean per-location AUROC", _f(d.held_out_locations))
    table.add_row("held-out location accuracy (all zeros)",
                  f"{_f(d.held_out.official['location_accuracy'])} "
                  f"({_f(d.held_out.official['location_accuracy_all_zeros'])})")
    console.print(table)
    print_by_size(console, d.by_size)
    console.print(f"open in a browser: {d.out / 'run' / 'report.html'} (and "
                  f"{d.out / 'pretrain' / 'report.html'} for pretraining)"
                  if (d.out / "pretrain" / "report.html").is_file()
                  else f"open in a browser: {d.out / 'run' / 'report.html'}")
    if d.maps:
        console.print(f"map montages (one per test patient): {d.maps}")


def print_label_maps(console: Console, classes: dict) -> None:
    for name, cls in classes.items():
        rules = getattr(cls, "label_rules", None)
        if rules is None:
            console.print(f"{name}: labels are the 21 K-ium locations themselves")
            continue
        table = Table(title=f"{name}: label mapping onto the 21 K-ium locations")
        for col in ("source label", "rule", "K-ium locations"):
            table.add_column(col)
        for r in rules:
            table.add_row(r.source_label, r.kind, ", ".join(r.targets))
        console.print(table)


def print_source_scores(console: Console, scores, skipped: int) -> None:
    table = Table(title="pretraining: validation AUROC per source (held out before pooling)")
    for col in ("source", "train", "val", "val positive", "AUROC [95% CI]"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for s in scores:
        table.add_row(s.source, str(s.train), str(s.val), str(s.val_positive),
                      f"{_f(s.auroc)} [{_f(s.low)}, {_f(s.high)}]")
    console.print(table)
    if skipped:
        console.print(f"{skipped} case(s) skipped with --skip-bad")


def print_named(console: Console, what: str, items: list[str], first: int = 3) -> None:
    """One line: how many ``items`` there were and the first few, each "path: reason"."""
    if items:
        console.print(f"[yellow]{what}[/]: {len(items)}: " + "; ".join(items[:first])
                      + (f"; ... (all {len(items)} in the run's records)"
                         if len(items) > first else ""), soft_wrap=True)  # paths unbroken
