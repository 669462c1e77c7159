"""A study's numbers as tables: mean ± sd per arm over seeds, and paired differences per seed.

Arms share each seed's data, folds and validation cases, so the per-seed difference against
the baseline is the figure to read; the means alone mix the arms' effect with the draws'.
Tables are printed as markdown and written as markdown and CSV (for plots and spreadsheets).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

from ..io.atomic import atomic_write_text
from .spec import COLUMNS, COMPARED, Study, StudyError, study_from_mapping

#: one arm in one seed: {"seed", "arm", "metrics": {name: value}, "runs": {folder: minutes},
#: "val_cases": {source: [cases, positive]} of its pretraining's validation split, if any}
Row = dict
RESULTS = ".results.json"


def mean_sd(values: list[float], digits: int = 3) -> str:
    """'mean ± sd' of the defined values; 'n/a' without any, the sd 'nan' with one."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def summary(rows: list[Row], arms: list[str], metrics: list[str]) -> list[dict]:
    """Per arm and metric: mean, sd and how many seeds defined it."""
    out = []
    for arm in arms:
        for metric in metrics:
            values = [v for r in rows if r["arm"] == arm
                      for v in [r["metrics"].get(metric, math.nan)] if not math.isnan(v)]
            out.append({"arm": arm, "metric": metric,
                        "mean": statistics.mean(values) if values else math.nan,
                        "sd": statistics.stdev(values) if len(values) > 1 else math.nan,
                        "n": len(values)})
    return out


def differences(rows: list[Row], study: Study, metric: str) -> list[dict]:
    """Per comparison and seed: ``arm`` − ``against`` on ``metric`` (NaN where either is
    missing or undefined in that seed)."""
    value = {(r["arm"], r["seed"]): r["metrics"].get(metric, math.nan) for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    return [{"comparison": c.name, "arm": c.arm, "against": c.against, "metric": metric,
             "seed": s, "difference": value.get((c.arm, s), math.nan)
             - value.get((c.against, s), math.nan)}
            for c in study.comparisons() for s in seeds]


def markdown(study: Study, rows: list[Row]) -> str:
    """Every table of one study, with a line saying what it ran on."""
    arms = [a.name for a in study.arms if any(r["arm"] == a.name for r in rows)]
    seeds = sorted({r["seed"] for r in rows})
    columns = COLUMNS[study.kind]
    lines = [_setting(study, seeds), "", "| arm | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(
            mean_sd([r["metrics"].get(m, math.nan) for r in rows if r["arm"] == arm],
                    1 if m == "minutes" else 3) for m in columns) + " |")
    lines += ["", f"Mean ± sd over seeds {seeds} (n/a: undefined, e.g. a source without "
              "negatives, or an arm without pretraining)." + _cases(rows)]
    for metric in COMPARED[study.kind]:
        found = differences(rows, study, metric)
        lines += ["", f"Paired differences per seed, {metric}:", "",
                  "| difference | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
                  "|---|" + "---|" * (len(seeds) + 1)]
        for comparison in dict.fromkeys(d["comparison"] for d in found):
            diffs = [d["difference"] for d in found if d["comparison"] == comparison]
            defined = [d for d in diffs if not math.isnan(d)]
            mean = f"{statistics.mean(defined):+.3f}" if defined else "n/a"
            lines.append(f"| {comparison} | " + " | ".join(
                "n/a" if math.isnan(d) else f"{d:+.3f}" for d in diffs) + f" | {mean} |")
    lines += ["", "Minutes per seed, each run counted once: " + ", ".join(
        f"seed {s} {_minutes(rows, s):.1f}" for s in seeds) + "."]
    return "\n".join(lines)


def _setting(study: Study, seeds: list[int]) -> str:
    e = study.external
    text = (f"Study `{study.name}` ({study.kind}). Per seed, synthetic external sources: RSNA "
            f"{e['rsna']}, ADAM {e['adam']}, Lausanne {e['lausanne']}, CADA {e['cada']} "
            f"cases, TopCoW {e['topcow']} patients, {e['spacing']} mm voxels; "
            f"{study.val_fraction:g} of each source held out for pretraining's validation")
    if study.kium:
        k = study.kium
        text += (f"; synthetic K-ium: {k['patients']} training patients ({study.folds} "
                 f"patient-level folds), {k['test']} held-out test patients, {k['image_size']} "
                 "px")
    return (text + f". Config: {study.config or 'built-in defaults'}. Seeds {seeds}: each "
            "draws its own data; within a seed the arms share data, splits and folds.")


def _cases(rows: list[Row]) -> str:
    """How many validation cases a pretraining AUROC is read off (the first row's: a seed's
    arms share one split per source)."""
    row = next((r for r in rows if r.get("val_cases")), None)
    if row is None:
        return ""
    cases = row["val_cases"]
    return (f" Pretraining's validation cases, seed {row['seed']}: " + ", ".join(
        f"{s} {n} ({p} positive)" for s, (n, p) in sorted(cases.items())) + ".")


def _minutes(rows: list[Row], seed: int) -> float:
    runs = {k: v for r in rows if r["seed"] == seed for k, v in r["runs"].items()}
    return sum(runs.values())


def write_tables(out: Path, study: Study, rows: list[Row]) -> Path:
    """OUT/NAME.results.json (the study and its rows), NAME.md, NAME-summary.csv and
    NAME-differences.csv; returns the markdown's path."""
    base = out / study.name
    atomic_write_text(base.with_name(study.name + RESULTS), json.dumps(
        {"study": study.to_mapping(), "rows": rows}, indent=1))
    arms = [a.name for a in study.arms]
    atomic_write_text(base.with_name(study.name + "-summary.csv"),
                      _csv(summary(rows, arms, COLUMNS[study.kind])))
    atomic_write_text(base.with_name(study.name + "-differences.csv"), _csv(
        [d for m in COMPARED[study.kind] for d in differences(rows, study, m)]))
    md = base.with_name(study.name + ".md")
    atomic_write_text(md, markdown(study, rows) + "\n")
    return md


def _csv(records: list[dict]) -> str:
    buffer = io.StringIO()
    if records:
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    return buffer.getvalue()


def read_results(out: Path) -> list[tuple[Study, list[Row]]]:
    """Every study's results in ``out`` (one line if there are none or one is unreadable)."""
    out = Path(out)
    paths = sorted(out.glob("*" + RESULTS)) if out.is_dir() else []
    if not paths:
        raise StudyError(f"{out}: no study results (*{RESULTS}); run `aneurysm study run` "
                         "first")
    found = []
    for path in paths:
        try:
            payload = json.loads(path.read_text())
            found.append((study_from_mapping(payload["study"], str(path)), payload["rows"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise StudyError(f"{path}: not a study results file ({exc})") from None
    return found
