"""Lausanne TOF-MRA (OpenNeuro ds003949, BIDS).

``participants.tsv`` (group: patient or control), ``sub-*/ses-*/anat/*_angio.nii.gz`` and one
lesion mask per aneurysm under ``derivatives/manual_masks/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pandas as pd

from aneurysm.errors import DataError
from aneurysm.schema import StudyRecord, VolumeRef

from ._common import VolumeSourceAdapter, mask_labels, presence_only_record


class LausanneAdapter(VolumeSourceAdapter):
    name = "lausanne"
    description = "Lausanne ds003949: TOF-MRA (BIDS), patients and controls, lesion masks"
    folder_name = "lausanne"

    def _items(self, root: Path) -> Iterator[tuple[Path, str, Path | None, str]]:
        tsv = root / "participants.tsv"
        if not tsv.is_file():
            raise DataError(tsv, "participants.tsv not found: not a Lausanne BIDS root")
        table = pd.read_csv(tsv, sep="\t", dtype=str)
        if not {"participant_id", "group"} <= set(table.columns):
            raise DataError(tsv, "needs columns participant_id and group")
        for row in table.itertuples(index=False):
            group = str(row.group).strip().lower()
            if group not in ("patient", "control"):
                yield root, row.participant_id, None, group  # reported by _case
                continue
            for angio in sorted((root / row.participant_id).glob("ses-*/anat/*_angio.nii.gz")):
                yield root, row.participant_id, angio, group

    def _case(self, item: tuple[Path, str, Path | None, str]) -> StudyRecord:
        root, sub, angio, group = item
        if angio is None:
            raise DataError(root / "participants.tsv",
                            f"{sub}: group {group!r} is not patient or control")
        return self._session(root, sub, angio, group)

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
