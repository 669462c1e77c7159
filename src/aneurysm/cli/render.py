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
