"""TopCoW 2024 (MICCAI): paired CTA and MRA with Circle-of-Willis artery labels, no aneurysms.

nnU-Net-style layout: ``imagesTr/topcow_{ct|mr}_{id}_0000.nii.gz``,
``cow_seg_labelsTr/topcow_{ct|mr}_{id}.nii.gz`` (13 vessel classes) and ``roi_loc_labelsTr/``
(a box per case, not needed here). Every case is a known negative for every location; its
artery labels make the injections anatomically right and train which artery is where. The CTA
and the MRA of one ``id`` are one patient: they share a patient id, so they share a fold.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from aneurysm.errors import DataError
from aneurysm.schema import StudyRecord, VolumeRef

from ._common import VolumeSourceAdapter
from .label_maps import NO_ANEURYSM, TOPCOW_ARTERIES, apply_rules

_IMAGE = re.compile(r"^topcow_(ct|mr)_(\w+?)_0000\.nii\.gz$")


class TopCowAdapter(VolumeSourceAdapter):
    name = "topcow"
    description = "TopCoW 2024: CTA + MRA pairs, 13 Circle-of-Willis artery labels, no aneurysm"
    folder_name = "topcow"
    label_rules = NO_ANEURYSM

    def _items(self, root: Path) -> Iterator[tuple[Path, re.Match]]:
        images = root / "imagesTr"
        if not images.is_dir():
            raise DataError(images, "imagesTr/ not found: not a TopCoW root")
        for path in sorted(images.iterdir()):
            match = _IMAGE.match(path.name)
            if match:
                yield path, match

    def _case(self, item: tuple[Path, re.Match]) -> StudyRecord:
        image, match = item
        kind, patient = match.groups()
        labels = image.parent.parent / "cow_seg_labelsTr" / f"topcow_{kind}_{patient}.nii.gz"
        if not labels.is_file():
            raise DataError(image, f"no artery labels at {labels}")
        mapped = apply_rules(NO_ANEURYSM, {})
        return StudyRecord(
            study_id=f"{kind}_{patient}", patient_id=patient, source=self.name,
            modality="CTA" if kind == "ct" else "MRA", views=(), presence=0,
            locations=mapped.locations, location_known=mapped.location_known,
            volume=VolumeRef("nifti", str(image), arteries=str(labels),
                             artery_labels=TOPCOW_ARTERIES))
