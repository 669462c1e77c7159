"""RSNA Intracranial Aneurysm Detection (Kaggle 2025): DICOM series, 13 location labels.

``train.csv``, ``train_localizers.csv`` (``coordinates`` is a dict literal, parsed with
``ast.literal_eval``, never ``eval``) and ``series/{SeriesInstanceUID}/*.dcm``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

import pandas as pd

from aneurysm.errors import DataError
from aneurysm.schema import StudyRecord, VolumeRef

from ._common import VolumeSourceAdapter
from .label_maps import RSNA2025, TOPCOW_ARTERIES, apply_rules

LOCATION_COLUMNS = tuple(r.source_label for r in RSNA2025 if r.kind != "unknown")
COLUMNS = ("SeriesInstanceUID", "PatientAge", "PatientSex", "Modality") + LOCATION_COLUMNS \
    + ("Aneurysm Present",)
MODALITIES = ("CTA", "MRA", "MRI T2", "MRI T1post")


def parse_coordinates(text: str, where: Path, line: int) -> tuple[float, float, int]:
    """``"{'x': 41.2, 'y': 77.9}"`` (plus ``'f'`` for multi-frame) -> (x, y, frame or -1)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise DataError(where, f"line {line}: coordinates {text!r} is not a dict literal") \
            from None
    if not isinstance(value, dict) or not {"x", "y"} <= set(value):
        raise DataError(where, f"line {line}: coordinates {text!r} lacks x and y")
    try:
        return float(value["x"]), float(value["y"]), int(value.get("f", -1))
    except (TypeError, ValueError):
        raise DataError(where, f"line {line}: coordinates {text!r} are not numbers") from None


class Rsna2025Adapter(VolumeSourceAdapter):
    name = "rsna2025"
    description = "RSNA 2025: CTA/MRA/MRI DICOM series, 13 locations mapped onto the 21"
    folder_name = "rsna2025"
    label_rules = RSNA2025

    def _items(self, root: Path) -> Iterator[tuple[Path, int, dict, tuple]]:
        csv = root / "train.csv"
        if not csv.is_file():
            raise DataError(csv, "train.csv not found: not an RSNA 2025 root")
        table = pd.read_csv(csv, dtype={"SeriesInstanceUID": str})
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise DataError(csv, f"missing columns {missing}")
        localizers = self._localizers(root / "train_localizers.csv")
        for line, row in enumerate(table.to_dict("records"), start=2):
            uid = str(row["SeriesInstanceUID"]).strip()
            yield root, line, row, localizers.get(uid, ())

    def _case(self, item: tuple[Path, int, dict, tuple]) -> StudyRecord:
        root, line, row, localizers = item
        uid = str(row["SeriesInstanceUID"]).strip()
        folder = root / "series" / uid
        if not folder.is_dir():
            raise DataError(folder, f"series folder missing for train.csv line {line}")
        try:
            values = {c: int(row[c]) for c in LOCATION_COLUMNS}
            presence = int(row["Aneurysm Present"])
        except (TypeError, ValueError):
            raise DataError(root / "train.csv", f"line {line}: labels must be whole numbers") \
                from None
        if any(v not in (0, 1) for v in [*values.values(), presence]):
            raise DataError(root / "train.csv", f"line {line}: labels must be 0 or 1")
        return self._record(uid, row, values, presence, folder, localizers)

    @staticmethod
    def _localizers(path: Path) -> dict[str, tuple]:
        if not path.is_file():
            return {}
        table = pd.read_csv(path, dtype=str)
        out: dict[str, list] = {}
        for line, row in enumerate(table.itertuples(index=False), start=2):
            x, y, frame = parse_coordinates(row.coordinates, path, line)
            out.setdefault(row.SeriesInstanceUID, []).append((row.SOPInstanceUID, x, y, frame))
        return {k: tuple(v) for k, v in out.items()}

    @staticmethod
    def _segmentation(series_folder: Path, uid: str) -> str:
        """The series' Circle-of-Willis labels, ``segmentations/{UID}_cowseg.nii[.gz]``, laid
        out flat or under ``segmentations/{UID}/`` (public code reads both); "" if none."""
        seg = series_folder.parent.parent / "segmentations"
        for folder in (seg, seg / uid):
            for suffix in (".nii", ".nii.gz"):
                candidate = folder / f"{uid}_cowseg{suffix}"
                if candidate.is_file():
                    return str(candidate)
        return ""

    def _record(self, uid: str, row: dict, values: dict[str, int], presence: int, folder: Path,
                localizers: tuple) -> StudyRecord:
        mapped = apply_rules(RSNA2025, values)
        modality = str(row["Modality"]).strip()
        return StudyRecord(
            study_id=uid, patient_id=uid, source=self.name, modality=modality, views=(),
            presence=presence, locations=mapped.locations, location_known=mapped.location_known,
            groups=mapped.groups,
            attributes=(("age", str(row["PatientAge"])), ("sex", str(row["PatientSex"]))),
            volume=VolumeRef("dicom", str(folder), localizers=localizers,
                             arteries=(seg := self._segmentation(folder, uid)),
                             artery_labels=TOPCOW_ARTERIES if seg else ()),
        )
