"""The study record: one patient examination from any source, in one label space.

Records are immutable so an adapter's output can be shared, cached and relabelled without
anyone changing it under another's feet: relabelling returns a new record.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .locations import ARTERIES, LOCATION_NAMES, NUM_LOCATIONS
from .views import view_type


@dataclass(frozen=True)
class ViewImage:
    """One view slot of a study. ``path`` is None when the view is absent: absence is explicit."""

    view: str
    path: str | None = None

    @property
    def present(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class GroupLabel:
    """"At least one of ``members`` holds an aneurysm" (positive) or "none does" (negative).

    Sources coarser than K-ium (RSNA's "Anterior Communicating Artery") say which group is
    positive without saying which member; training treats it as a noisy-OR of the members.
    """

    members: tuple[str, ...]
    positive: bool = True

    def __post_init__(self) -> None:
        unknown = [m for m in self.members if m not in LOCATION_NAMES]
        if unknown or len(self.members) < 2:
            raise ValueError(f"group label needs >= 2 known locations, got {self.members}")


#: Injection territories: a left or right internal-carotid injection's, a vertebral one's.
TERRITORIES = ("LI", "RI", "V")


@dataclass(frozen=True)
class VolumeRef:
    """Where a 3-D study's image and annotations live, in the source's own files.

    ``points`` are (x, y, z, radius) in the volume file's own voxel grid (ADAM's location.txt);
    ``localizers`` are (SOPInstanceUID, column, row, frame) of a DICOM series (RSNA), frame -1
    for single-frame files. ``arteries`` is a NIfTI of artery labels in the image's space (RSNA
    segmentations, TopCoW), and ``artery_labels`` says what its values mean: (value, artery of
    ``ARTERIES``, injection territory "LI", "RI", "V" or "" for a vessel between territories).
    """

    kind: str  # "nifti" (a file) or "dicom" (a series folder)
    path: str
    lesion_masks: tuple[str, ...] = ()
    ignore_labels: tuple[int, ...] = ()  # mask labels that are neither positive nor negative
    points: tuple[tuple[float, float, float, float], ...] = ()
    localizers: tuple[tuple[str, float, float, int], ...] = ()
    arteries: str = ""
    artery_labels: tuple[tuple[int, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("nifti", "dicom"):
            raise ValueError(f"unknown volume kind {self.kind!r}")
        bad = [a for _, a, t in self.artery_labels
               if a not in ARTERIES or t not in TERRITORIES + ("",)]  # "": between territories
        if bad:
            raise ValueError(f"artery labels name unknown arteries or territories: {bad}")


@dataclass(frozen=True)
class StudyRecord:
    study_id: str
    patient_id: str
    source: str
    modality: str
    views: tuple[ViewImage, ...]
    presence: int | None = None  # 1, 0, or None when unlabelled (a test set)
    locations: tuple[int, ...] = (0,) * NUM_LOCATIONS
    location_known: tuple[bool, ...] = (False,) * NUM_LOCATIONS
    groups: tuple[GroupLabel, ...] = ()
    split: str = "train"
    attributes: tuple[tuple[str, str], ...] = field(default=())
    volume: VolumeRef | None = None  # set for 3-D sources until they are projected to views

    def __post_init__(self) -> None:
        if len(self.locations) != NUM_LOCATIONS or len(self.location_known) != NUM_LOCATIONS:
            raise ValueError(f"study {self.study_id}: need {NUM_LOCATIONS} location labels")
        if any(v not in (0, 1) for v in self.locations):
            raise ValueError(f"study {self.study_id}: location labels must be 0 or 1")
        if self.presence not in (None, 0, 1):
            raise ValueError(f"study {self.study_id}: presence must be 0, 1 or None")
        names = [v.view for v in self.views]
        if len(set(names)) != len(names):
            raise ValueError(f"study {self.study_id}: a view appears twice in {names}")
        for name in names:
            view_type(name)  # raises on an unknown view name

    # -- views ---------------------------------------------------------------------------
    @property
    def available_views(self) -> tuple[str, ...]:
        return tuple(v.view for v in self.views if v.present)

    @property
    def missing_views(self) -> tuple[str, ...]:
        return tuple(v.view for v in self.views if not v.present)

    def view_path(self, name: str) -> str | None:
        for v in self.views:
            if v.view == name:
                return v.path
        raise KeyError(f"study {self.study_id} has no view slot {name!r}")

    # -- labels --------------------------------------------------------------------------
    @property
    def is_labelled(self) -> bool:
        return self.presence is not None

    def location_vector(self) -> list[float]:
        """Labels as floats, NaN where unknown (the torchxrayvision convention)."""
        return [float(v) if k else math.nan for v, k in zip(self.locations, self.location_known)]

    @property
    def positive_locations(self) -> tuple[str, ...]:
        return tuple(
            n for n, v, k in zip(LOCATION_NAMES, self.locations, self.location_known) if k and v
        )

    def relabel(self, **changes: object) -> "StudyRecord":
        """A new record with the given fields replaced; the original is untouched."""
        return dataclasses.replace(self, **changes)

    def with_views(self, views: tuple[ViewImage, ...]) -> "StudyRecord":
        return dataclasses.replace(self, views=tuple(views))


def fully_labelled(locations: tuple[int, ...] | list[int]) -> dict[str, tuple]:
    """Keyword arguments for a record whose 21 locations are all known (K-ium)."""
    locs = tuple(int(v) for v in locations)
    return {"locations": locs, "location_known": (True,) * NUM_LOCATIONS}
