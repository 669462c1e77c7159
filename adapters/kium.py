"""The 2023 K-ium challenge: eight DSA JPEGs per patient and a 23-column label CSV.

Layout: ``ROOT/train_set/train.csv`` + images, ``ROOT/test_set/test.csv`` + images, all images
of a set in one folder, named ``{Index}{VIEW}.jpg`` (Index plain or zero-padded).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aneurysm.errors import DataError
from aneurysm.io.images import IMAGE_SUFFIXES
from aneurysm.quality.findings import Finding
from aneurysm.schema import (
    KIUM_COLUMNS,
    KIUM_VIEW_NAMES,
    LOCATION_NAMES,
    StudyRecord,
    ViewImage,
    fully_labelled,
)

SPLITS = {"train": ("train_set", "train.csv"), "test": ("test_set", "test.csv")}
_NAME = re.compile(
    r"^(?P<index>\d+)(?P<view>" + "|".join(re.escape(v) for v in KIUM_VIEW_NAMES) + r")"
    r"(?P<ext>\.[A-Za-z]+)$"
)


@dataclass
class FolderScan:
    """Image files of one set folder, sorted into (Index, view) slots and the rest."""

    slots: dict[tuple[int, str], list[Path]] = field(default_factory=lambda: defaultdict(list))
    unmatched: list[Path] = field(default_factory=list)

    @property
    def indices(self) -> set[int]:
        return {i for i, _ in self.slots}


def scan_folder(folder: Path) -> FolderScan:
    scan = FolderScan()
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.suffix.lower() == ".csv":
            continue
        m = _NAME.match(path.name)
        if m and m["ext"].lower() in IMAGE_SUFFIXES:
            scan.slots[(int(m["index"]), m["view"])].append(path)
        else:
            scan.unmatched.append(path)
    return scan


def set_paths(root: Path, split: str) -> tuple[Path, Path]:
    folder_name, csv_name = SPLITS[split]
    return root / folder_name, root / folder_name / csv_name


def read_label_table(csv_path: Path) -> pd.DataFrame:
    """Read a K-ium CSV as strings, raising a one-line error for an unusable file or header."""
    if not csv_path.is_file():
        raise DataError(csv_path, "label CSV not found")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(csv_path, f"not a readable CSV ({str(exc).splitlines()[0]})") from None
    with open(csv_path, newline="", encoding="utf-8-sig", errors="replace") as f:
        header = next(csv.reader(f), [])
    table.columns = [c.strip() for c in table.columns]
    table.attrs["header"] = [c.strip() for c in header]  # as written: pandas renames duplicates
    return table


def header_problems(columns: list[str]) -> list[str]:
    """What is wrong with a header as written in the file (not as pandas renamed it)."""
    if columns and not set(columns) & set(KIUM_COLUMNS) and columns[0].isdigit():
        return [f"no header row: the first line is data ({', '.join(columns[:3])}, ...)"]
    dups = sorted({c for c in columns if columns.count(c) > 1})
    if dups:
        return [f"duplicate columns {dups}"]
    missing = [c for c in KIUM_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in KIUM_COLUMNS]
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    if not missing and not extra and list(columns) != list(KIUM_COLUMNS):
        problems.append("columns are not in the official order")
    return problems


def table_findings(table: pd.DataFrame, csv_path: Path, labelled: bool) -> list[Finding]:
    """Row-level CSV problems: duplicates, empty cells, non-binary labels, inconsistent presence."""
    out: list[Finding] = []
    where = str(csv_path)
    present_cols = [c for c in KIUM_COLUMNS if c in table.columns]
    for row_no, row in enumerate(table.itertuples(index=False), start=2):
        values = dict(zip(table.columns, row))
        empties = [c for c in present_cols if str(values[c]).strip() == ""]
        if empties:
            out.append(Finding("csv_empty_cell", "error", where,
                               f"line {row_no}: empty cells in {empties}"))
        idx = str(values.get("Index", "")).strip()
        if idx and not idx.isdigit():
            out.append(Finding("csv_bad_index", "error", where,
                               f"line {row_no}: Index {idx!r} is not a whole number"))
        bad = [f"{c}={values[c]!r}" for c in present_cols[1:]
               if str(values[c]).strip() not in ("", "0", "1")]
        if bad:
            out.append(Finding("csv_bad_label", "error", where,
                               f"line {row_no} (Index {idx}): labels other than 0/1: "
                               + ", ".join(bad)))
        if labelled and not bad and not empties and "Aneurysm" in values:
            locs = [c for c in LOCATION_NAMES if c in values and str(values[c]).strip() == "1"]
            presence = str(values["Aneurysm"]).strip() == "1"
            if presence != bool(locs):
                out.append(Finding("csv_presence_mismatch", "warning", where,
                                   f"line {row_no} (Index {idx}): Aneurysm={int(presence)} but "
                                   f"{len(locs)} location(s) are 1"))
        if not labelled and not bad and not empties:
            ones = [c for c in present_cols[1:] if str(values[c]).strip() == "1"]
            if ones:
                out.append(Finding("csv_test_labels", "warning", where,
                                   f"line {row_no} (Index {idx}): test labels should be 0, "
                                   f"found 1 in {ones}"))
    if "Index" in table.columns:
        counts = table["Index"].str.strip().value_counts()
        for idx, n in counts[counts > 1].items():
            out.append(Finding("csv_duplicate_index", "error", where,
                               f"Index {idx} appears on {n} rows"))
    return out


def layout_findings(scan: FolderScan, table: pd.DataFrame, folder: Path) -> list[Finding]:
    """Files against the CSV: missing views, stray files, doubled slots, Index without images."""
    out: list[Finding] = []
    for path in scan.unmatched:
        out.append(Finding("unmatched_file", "warning", str(path),
                           "matches no patient/view name pattern {Index}{VIEW}.jpg"))
    for (idx, view), paths in sorted(scan.slots.items()):
        if len(paths) > 1:
            out.append(Finding("ambiguous_view", "warning", str(paths[1]),
                               f"patient {idx} view {view} has {len(paths)} files: "
                               + ", ".join(p.name for p in paths)))
    csv_indices = {int(i) for i in table.get("Index", pd.Series(dtype=str)).str.strip()
                   if i.isdigit()}
    for idx in sorted(csv_indices):
        views = [v for v in KIUM_VIEW_NAMES if (idx, v) in scan.slots]
        if not views:
            out.append(Finding("index_without_images", "error", str(folder),
                               f"Index {idx} is in the CSV but has no images"))
        elif len(views) < len(KIUM_VIEW_NAMES):
            missing = [v for v in KIUM_VIEW_NAMES if v not in views]
            out.append(Finding("missing_views", "warning", str(folder / f"{idx}*"),
                               f"patient {idx} lacks views {missing}"))
    for idx in sorted(scan.indices - csv_indices):
        out.append(Finding("images_without_index", "warning", str(folder / f"{idx}*"),
                           f"images of patient {idx}, who is not in the CSV"))
    return out


def _records_from_table(table: pd.DataFrame, scan: FolderScan, split: str,
                        csv_path: Path) -> list[StudyRecord]:
    records = []
    labelled = split == "train"
    for row_no, row in enumerate(table.to_dict("records"), start=2):
        try:
            idx = int(str(row["Index"]).strip())
            labels = [int(str(row[c]).strip()) for c in LOCATION_NAMES]
            presence = int(str(row["Aneurysm"]).strip())
        except ValueError:
            raise DataError(csv_path, f"line {row_no}: Index and labels must be whole numbers "
                                      "(run `aneurysm check` for a full report)") from None
        if any(v not in (0, 1) for v in labels + [presence]):
            raise DataError(csv_path, f"line {row_no} (Index {idx}): labels must be 0 or 1 "
                                      "(run `aneurysm check` for a full report)")
        views = tuple(
            ViewImage(v, str(scan.slots[(idx, v)][0]) if (idx, v) in scan.slots else None)
            for v in KIUM_VIEW_NAMES
        )
        if labelled:
            label_fields = dict(presence=presence, **fully_labelled(labels))
        else:
            label_fields = {}
        records.append(StudyRecord(
            study_id=str(idx), patient_id=str(idx), source="kium", modality="DSA",
            views=views, split=split, **label_fields,
        ))
    return records


class KiumAdapter:
    """Reads a K-ium root into study records; ``inspect`` feeds the data doctor."""

    name = "kium"
    target = True  # the challenge itself, never pooled into external pretraining
    description = "2023 K-ium challenge: 8 DSA views per patient, 21 locations (JPEG/PNG + CSV)"
    folder_name = "kium"
    splits = ("train", "test")

    def load(self, root: str | Path, split: str = "train") -> list[StudyRecord]:
        """Records of one split in CSV row order; absent views are explicit (path None)."""
        root = Path(root)
        if split not in SPLITS:
            raise DataError(root, f"unknown split {split!r}; K-ium has {list(SPLITS)}")
        if not root.is_dir():
            raise DataError(root, "K-ium root not found")
        folder, _ = set_paths(root, split)
        if not folder.is_dir():
            raise DataError(folder, f"{split} folder not found (expected {SPLITS[split][0]}/)")
        return self.load_set(folder, split)

    def load_set(self, folder: str | Path, split: str = "test") -> list[StudyRecord]:
        """Records of one set folder on its own (e.g. the organizers' test folder)."""
        folder = Path(folder)
        csv_path = folder / SPLITS[split][1]
        table = read_label_table(csv_path)
        problems = header_problems(table.attrs["header"])
        if problems:
            raise DataError(csv_path, "wrong header: " + "; ".join(problems))
        duplicated = table["Index"].str.strip()
        dups = sorted(set(duplicated[duplicated.duplicated()]))
        if dups:
            raise DataError(csv_path, f"duplicate Index values {dups[:5]}")
        return _records_from_table(table, scan_folder(folder), split, csv_path)

    def inspect(self, root: str | Path) -> tuple[list[Finding], dict[Path, str]]:
        """Layout and CSV findings for every split present, plus {image file: patient} to examine.

        The patient is "" for files that match no patient.
        """
        root = Path(root)
        if not root.is_dir():
            raise DataError(root, "K-ium root not found")
        findings: list[Finding] = []
        images: dict[Path, str] = {}
        found_any = False
        for split in self.splits:
            folder, csv_path = set_paths(root, split)
            if not folder.is_dir():
                if split == "train":
                    findings.append(Finding("missing_folder", "error", str(folder),
                                            "train_set/ folder not found"))
                continue
            found_any = True
            scan = scan_folder(folder)
            images.update({p: f"{split}:{idx}" for (idx, _), paths in scan.slots.items()
                           for p in paths})
            images.update({p: "" for p in scan.unmatched if p.suffix.lower() in IMAGE_SUFFIXES})
            try:
                table = read_label_table(csv_path)
            except DataError as exc:
                findings.append(Finding("csv_unreadable", "error", str(exc.path), exc.problem))
                continue
            for problem in header_problems(table.attrs["header"]):
                findings.append(Finding("csv_header", "error", str(csv_path), problem))
            findings.extend(table_findings(table, csv_path, labelled=(split == "train")))
            findings.extend(layout_findings(scan, table, folder))
        if not found_any:
            raise DataError(root, "neither train_set/ nor test_set/ found: not a K-ium root")
        return findings, dict(sorted(images.items()))
