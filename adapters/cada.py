"""CADA (MICCAI 2020): 3-D rotational angiography, every case has an aneurysm.

``A001_orig.nii.gz``, ``A001_masks.nii.gz`` (binary), ``A001_labeledMasks.nii.gz`` (one id per
aneurysm). Positive-only presence: an empty mask is an error, not a negative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from aneurysm.errors import DataError
from aneurysm.schema import StudyRecord, VolumeRef

from ._common import VolumeSourceAdapter, mask_labels, presence_only_record


class CadaAdapter(VolumeSourceAdapter):
    name = "cada"
    description = "CADA 2020: 3DRA, every case positive, per-aneurysm labelled masks"
    folder_name = "cada"

    def _items(self, root: Path) -> Iterator[Path]:
        return iter(sorted(root.rglob("*_orig.nii.gz")))

    def _case(self, image: Path) -> StudyRecord:
        stem = image.name[: -len("_orig.nii.gz")]
        labelled = image.with_name(f"{stem}_labeledMasks.nii.gz")
        binary = image.with_name(f"{stem}_masks.nii.gz")
        mask = labelled if labelled.is_file() else binary
        if not mask.is_file():
            raise DataError(image, f"no {labelled.name} or {binary.name} beside it")
        if not len(mask_labels(mask)):
            raise DataError(mask, "empty aneurysm mask, but every CADA case has an aneurysm")
        return presence_only_record(self.name, stem, stem, "3DRA", 1,
                                    VolumeRef("nifti", str(image), (str(mask),)))
