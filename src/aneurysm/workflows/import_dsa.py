"""``aneurysm import-dsa``: a folder of X-ray angiography runs into the K-ium layout.

A hospital's angiography is DICOM runs, not K-ium JPEGs. Each run listed in ``runs.csv``
(file, Index, injection) becomes one K-ium view, ``{Index}{injection}-{A|B}.jpg``: its
arterial frame (``io.dsa.arterial_frame``), the projection from the positioner angle. With a
labels table (K-ium's 23 columns) the patients become ``train_set/``; without one,
``test_set/`` with all-zero labels, as K-ium's own test.csv has. Every other command then reads
the folder as a K-ium root.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..errors import AneurysmError, DataError
from ..io.atomic import atomic_write_text
from ..io.dsa import arterial_frame, read_run
from ..io.images import write_image
from ..schema import KIUM_COLUMNS

INJECTIONS = ("LI", "RI", "LV", "RV")
#: what ``scripts/dsa_frame_rule.py`` measured best on synthetic runs (docs/real-data.md)
DEFAULT_RULE = "peak"


@dataclass
class ImportResult:
    root: Path
    patients: int
    views: int
    skipped: list[str] = field(default_factory=list)  # "file: problem", under skip_bad
    duplicates: list[str] = field(default_factory=list)  # a second run for one view, not used


def _table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"unreadable table ({exc.__class__.__name__})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}")
    return table


def import_dsa(runs_root: str | Path, out: str | Path, runs_table: str | Path | None = None,
               labels: str | Path | None = None, rule: str = DEFAULT_RULE,
               skip_bad: bool = False, force: bool = False,
               progress: bool = True) -> ImportResult:
    """Write a K-ium root at ``out`` from the runs ``runs_table`` lists (default:
    ``runs_root/runs.csv``), file paths relative to ``runs_root``."""
    runs_root, out = Path(runs_root), Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise AneurysmError(f"{out}: exists; use --force to replace it")
    table_path = Path(runs_table) if runs_table else runs_root / "runs.csv"
    table = _table(table_path, ("file", "Index", "injection"))
    bad = sorted(set(table["injection"]) - set(INJECTIONS))
    if bad:
        raise DataError(table_path, f"injection must be one of {list(INJECTIONS)}, got {bad}")
    truth = _table(Path(labels), KIUM_COLUMNS) if labels else None
    split, csv = ("train_set", "train.csv") if truth is not None else ("test_set", "test.csv")
    tmp = out.with_name(f".{out.name}.importing")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / split).mkdir(parents=True)
    result = ImportResult(out, 0, 0)
    written: set[str] = set()
    for row in tqdm(table.itertuples(index=False), total=len(table), desc="import runs",
                    unit="run", disable=not progress):
        path = runs_root / row.file
        try:
            run = read_run(path)
        except DataError as exc:
            if not skip_bad:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            result.skipped.append(str(exc))
            continue
        view = f"{row.injection}-{run.projection}"
        name = f"{int(row.Index)}{view}.jpg"
        if name in written:
            result.duplicates.append(f"{path}: a second {view} run for patient {row.Index}")
            continue
        frame = arterial_frame(run.frames, rule)
        write_image(tmp / split / name, np.rint(frame).clip(0, 255).astype(np.uint8))
        written.add(name)
    indices = sorted({int(n[:-len("LI-A.jpg")]) for n in written})
    if truth is not None:
        rows = truth[truth["Index"].isin(indices)]
        unlabelled = sorted(set(indices) - set(rows["Index"]))
        if unlabelled:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(Path(labels), f"no labels for patient(s) {unlabelled[:5]}")
    else:
        rows = pd.DataFrame({c: indices if c == "Index" else 0 for c in KIUM_COLUMNS})
    atomic_write_text(tmp / split / csv, rows[list(KIUM_COLUMNS)].to_csv(index=False))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    result.patients, result.views = len(indices), len(written)
    return result
