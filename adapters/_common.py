"""Helpers the 3-D source adapters share."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from aneurysm.errors import DataError
from aneurysm.io.volumes import load_nifti_image
from aneurysm.schema import NUM_LOCATIONS, StudyRecord, VolumeRef

from .label_maps import PRESENCE_ONLY, apply_rules


class BadCases:
    """Skip-and-warn only where the user asked for it (``skip_bad``), always counted."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped: list[str] = []

    def handle(self, exc: DataError) -> None:
        if not self.skip_bad:
            raise exc
        self.skipped.append(str(exc))
        warnings.warn(f"skipped: {exc}", stacklevel=3)


class VolumeSourceAdapter:
    """Base of the 3-D source adapters: iterate a source's cases, skip bad ones on request.

    Subclasses yield one item per case from ``_items(root)`` of an existing folder (raising
    DataError for an unusable root) and turn an item into a record in ``_case(item)`` (raising DataError for a bad case).
    """

    name = ""
    description = ""
    folder_name = ""
    splits = ("train",)
    label_rules = PRESENCE_ONLY

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def load(self, root: str | Path, split: str = "train", skip_bad: bool = False
             ) -> list[StudyRecord]:
        root = Path(root)
        if not root.is_dir():
            raise DataError(root, f"{self.name} root not found")
        bad = BadCases(skip_bad)
        records = []
        for item in self._items(root):
            try:
                records.append(self._case(item))
            except DataError as exc:
                bad.handle(exc)
        self.skipped = bad.skipped
        return records

    def _items(self, root: Path) -> Iterator:
        raise NotImplementedError

    def _case(self, item) -> StudyRecord:
        raise NotImplementedError


def mask_labels(path: str | Path) -> np.ndarray:
    """The set of non-zero labels in a mask file."""
    img = load_nifti_image(path)
    try:
        data = np.asarray(img.dataobj)
    except Exception as exc:
        raise DataError(path, f"unreadable mask data ({exc})") from None
    return np.unique(data[data != 0]).astype(int)


def presence_only_record(source: str, study_id: str, patient_id: str, modality: str,
                         presence: int | None, volume: VolumeRef) -> StudyRecord:
    mapped = apply_rules(PRESENCE_ONLY, {})
    assert not any(mapped.location_known) and len(mapped.locations) == NUM_LOCATIONS
    return StudyRecord(study_id=study_id, patient_id=patient_id, source=source,
                       modality=modality, views=(), presence=presence,
                       locations=mapped.locations, location_known=mapped.location_known,
                       volume=volume)
