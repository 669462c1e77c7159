"""The 21 K-ium aneurysm locations, in the official column order, with side and territory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    name: str  # official column name, e.g. "L_ICA"
    side: str  # "L", "R" or "mid"
    artery: str  # e.g. "ICA", "ACOM"
    territory: str  # "anterior" (carotid) or "posterior" (vertebrobasilar)
    description: str


_ARTERIES = {
    "ICA": ("anterior", "internal carotid artery"),
    "PCOM": ("anterior", "posterior communicating artery"),
    "AntChor": ("anterior", "anterior choroidal artery"),
    "ACA": ("anterior", "anterior cerebral artery"),
    "ACOM": ("anterior", "anterior communicating artery (its side)"),
    "MCA": ("anterior", "middle cerebral artery"),
    "VA": ("posterior", "vertebral artery"),
    "PICA": ("posterior", "posterior inferior cerebellar artery"),
    "SCA": ("posterior", "superior cerebellar artery"),
    "BA": ("posterior", "basilar artery"),
    "PCA": ("posterior", "posterior cerebral artery"),
}

#: The arteries the 21 locations name, each side's and the midline's alike.
ARTERIES: tuple[str, ...] = tuple(_ARTERIES)

#: Official order of the 21 location columns of train.csv / output.csv.
LOCATION_NAMES: tuple[str, ...] = (
    "L_ICA", "R_ICA", "L_PCOM", "R_PCOM", "L_AntChor", "R_AntChor", "L_ACA", "R_ACA",
    "L_ACOM", "R_ACOM", "L_MCA", "R_MCA", "L_VA", "R_VA", "L_PICA", "R_PICA", "L_SCA",
    "R_SCA", "BA", "L_PCA", "R_PCA",
)


def _location(name: str) -> Location:
    side, _, artery = name.partition("_") if "_" in name else ("mid", "", name)
    territory, words = _ARTERIES[artery]
    side_word = {"L": "left ", "R": "right ", "mid": ""}[side]
    return Location(name, side, artery, territory, side_word + words)


LOCATIONS: tuple[Location, ...] = tuple(_location(n) for n in LOCATION_NAMES)
NUM_LOCATIONS = len(LOCATIONS)

#: Positive counts per location in the real K-ium train set (reference), in official order.
KIUM_TRAIN_POSITIVES: tuple[int, ...] = (
    100, 100, 35, 34, 30, 18, 21, 13, 66, 30, 67, 96, 17, 11, 3, 2, 6, 4, 24, 3, 1,
)

#: Real train-set facts the synthesizer reproduces.
KIUM_TRAIN_PATIENTS = 1127
KIUM_TRAIN_POSITIVE_PATIENTS = 523
#: Aneurysms per positive patient: count -> number of patients.
KIUM_ANEURYSMS_PER_PATIENT: dict[int, int] = {1: 402, 2: 92, 3: 23, 4: 4, 5: 2}


def location_index(name: str) -> int:
    try:
        return LOCATION_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown location {name!r}; known: {', '.join(LOCATION_NAMES)}") from None


def mirror_location_name(name: str) -> str:
    """L_X <-> R_X; midline locations (BA) map to themselves."""
    if name.startswith("L_"):
        return "R_" + name[2:]
    if name.startswith("R_"):
        return "L_" + name[2:]
    return name


#: For each location index, the index of its mirror image (used by left-right augmentation).
MIRROR_PERMUTATION: tuple[int, ...] = tuple(
    location_index(mirror_location_name(n)) for n in LOCATION_NAMES
)
