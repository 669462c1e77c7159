"""Lausanne TOF-MRA (OpenNeuro ds003949, BIDS).

``participants.tsv`` (group: patient or control), ``sub-*/ses-*/anat/*_angio.nii.gz`` and one
lesion mask per aneurysm under ``derivatives/manual_masks/``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aneurysm.errors import DataError
from aneurysm.schema import StudyRecord, VolumeRef

from ._common import BadCases, mask_labels, presence_only_record
from .label_maps import PRESENCE_ONLY


class LausanneAdapter:
    name = "lausanne"
    description = "Lausanne ds003949: TOF-MRA (BIDS), patients and controls, lesion masks"
    folder_name = "lausanne"
    splits = ("train",)
    label_rules = PRESENCE_ONLY

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def load(self, root: str | Path, split: str = "train", skip_bad: bool = False
             ) -> list[StudyRecord]:
        root = Path(root)
        tsv = root / "participants.tsv"
        if not tsv.is_file():
            raise DataError(tsv, "participants.tsv not found: not a Lausanne BIDS root")
        table = pd.read_csv(tsv, sep="\t", dtype=str)
        if not {"participant_id", "group"} <= set(table.columns):
            raise DataError(tsv, "needs columns participant_id and group")
        bad = BadCases(skip_bad)
        records = []
        for row in table.itertuples(index=False):
            group = str(row.group).strip().lower()
            if group not in ("patient", "control"):
                bad.handle(DataError(tsv, f"{row.participant_id}: group {row.group!r} is not "
                                          "patient or control"))
                continue
            for angio in sorted((root / row.participant_id).glob("ses-*/anat/*_angio.nii.gz")):
                try:
                    records.append(self._session(root, row.participant_id, angio, group))
                except DataError as exc:
                    bad.handle(exc)
        self.skipped = bad.skipped
        return records

    def _session(self, root: Path, sub: str, angio: Path, group: str) -> StudyRecord:
        ses = angio.parent.parent.name
        masks_dir = root / "derivatives" / "manual_masks" / sub / ses / "anat"
        masks = tuple(sorted(masks_dir.glob(f"{sub}_{ses}_desc-Lesion_*_mask.nii.gz")))
        if group == "patient":
            if not masks:
                raise DataError(angio, "patient without lesion masks")
            for m in masks:
                if not len(mask_labels(m)):
                    raise DataError(m, "empty lesion mask")
        return presence_only_record(self.name, f"{sub}_{ses}", sub, "TOF-MRA",
                                    int(group == "patient"),
                                    VolumeRef("nifti", str(angio), tuple(map(str, masks))))
