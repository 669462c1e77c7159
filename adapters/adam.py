"""ADAM (MICCAI 2020): TOF-MRA, one folder per case.

``<id>/pre/TOF.nii.gz`` (or ``orig/TOF.nii.gz``), ``aneurysms.nii.gz`` (1 = untreated aneurysm,
2 = treated aneurysm or artefact: neither positive nor negative evidence), ``location.txt``
(``x, y, z, radius`` per aneurysm, voxel coordinates; empty for controls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from aneurysm.errors import DataError
from aneurysm.schema import StudyRecord, VolumeRef

from ._common import VolumeSourceAdapter, mask_labels, presence_only_record


def _read_points(path: Path) -> tuple[tuple[float, float, float, float], ...]:
    points = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            raise DataError(path, f"line {n}: expected 'x, y, z, radius', got {line!r}") from None
        if len(values) != 4:
            raise DataError(path, f"line {n}: expected 4 numbers, got {len(values)}")
        points.append(values)
    return tuple(points)


class AdamAdapter(VolumeSourceAdapter):
    name = "adam"
    description = "ADAM 2020: TOF-MRA, presence from aneurysms.nii.gz label 1 and location.txt"
    folder_name = "adam"

    def _items(self, root: Path) -> Iterator[Path]:
        return iter(sorted(p for p in root.iterdir() if p.is_dir()))

    def _case(self, case: Path) -> StudyRecord:
        tof = next((p for p in (case / "pre" / "TOF.nii.gz", case / "orig" / "TOF.nii.gz")
                    if p.is_file()), None)
        if tof is None:
            raise DataError(case, "no pre/TOF.nii.gz or orig/TOF.nii.gz")
        mask = case / "aneurysms.nii.gz"
        labels = set(mask_labels(mask)) if mask.is_file() else set()
        loc_txt = case / "location.txt"
        points = _read_points(loc_txt) if loc_txt.is_file() else ()
        if not mask.is_file() and not loc_txt.is_file():
            raise DataError(case, "neither aneurysms.nii.gz nor location.txt: no label")
        if 1 in labels or points:
            presence: int | None = 1
        elif 2 in labels:
            presence = None  # only treated aneurysms/artefacts: no evidence either way
        else:
            presence = 0
        volume = VolumeRef("nifti", str(tof), (str(mask),) if mask.is_file() else (),
                           ignore_labels=(2,), points=points)
        return presence_only_record(self.name, case.name, case.name, "TOF-MRA", presence, volume)
