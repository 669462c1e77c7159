"""View types: what each image of a study shows.

A K-ium patient has eight DSA views named ``{side}{artery}-{projection}``: L/R is the side
injected, I an internal-carotid and V a vertebral injection, A the frontal (AP) and B the lateral
projection. External 3-D sources are projected into the same eight views (each injection's
territory, frontal and lateral), so pretraining and fine-tuning share every view embedding.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewType:
    name: str
    side: str  # "L", "R", or "both" for projections that show both hemispheres
    artery: str  # "ICA", "VA", or "all" for projections of a whole volume
    projection: str  # "frontal" or "lateral"
    description: str


def _dsa(side: str, artery: str, projection: str) -> ViewType:
    side_word = {"L": "left", "R": "right"}[side]
    artery_word = {"I": "internal carotid", "V": "vertebral"}[artery]
    proj_word = {"A": "frontal (AP)", "B": "lateral"}[projection]
    return ViewType(
        name=f"{side}{artery}-{projection}",
        side=side,
        artery={"I": "ICA", "V": "VA"}[artery],
        projection={"A": "frontal", "B": "lateral"}[projection],
        description=f"DSA, {side_word} {artery_word} injection, {proj_word} projection",
    )


#: The eight K-ium views, in the challenge's order.
KIUM_VIEWS: tuple[ViewType, ...] = tuple(
    _dsa(s, a, p) for s, a, p in (
        ("L", "I", "A"), ("L", "I", "B"), ("L", "V", "A"), ("L", "V", "B"),
        ("R", "I", "A"), ("R", "I", "B"), ("R", "V", "A"), ("R", "V", "B"),
    )
)
KIUM_VIEW_NAMES: tuple[str, ...] = tuple(v.name for v in KIUM_VIEWS)

#: Every known view type; the index of a name here is its embedding id in the model.
VIEW_TYPES: tuple[ViewType, ...] = KIUM_VIEWS
_BY_NAME = {v.name: v for v in VIEW_TYPES}


def view_type(name: str) -> ViewType:
    """Look a view type up by name, with an error that lists the valid names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown view {name!r}; known views: {', '.join(_BY_NAME)}") from None


def view_index(name: str) -> int:
    return VIEW_TYPES.index(view_type(name))


def mirror_view_name(name: str) -> str:
    """The view that a left-right mirrored patient would have in place of ``name``."""
    v = view_type(name)
    return ("R" if v.side == "L" else "L") + name[1:]
