"""View types: what each image of a study shows.

A K-ium patient has eight DSA views named ``{side}{artery}-{projection}``: L/R is the side
injected, I an internal-carotid and V a vertebral injection, A the frontal (AP) and B the lateral
projection. External 3-D sources add their own projection view types in a later step; every view
type lives in this one table so the model can give each its own embedding.
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

def _projection(region: str, projection: str) -> ViewType:
    side, artery, words = {
        "ALL": ("both", "all", "whole volume"),
        "L": ("L", "ICA", "left hemisphere (imitates a left carotid injection)"),
        "R": ("R", "ICA", "right hemisphere (imitates a right carotid injection)"),
        "POST": ("both", "VA", "posterior circulation (imitates a vertebral injection)"),
    }[region]
    proj_word = {"A": "frontal", "B": "lateral"}[projection]
    return ViewType(
        name=f"MIP-{region}-{projection}", side=side, artery=artery,
        projection=proj_word,
        description=f"inverted maximum-intensity projection of a 3-D volume, {words}, "
                    f"{proj_word}",
    )


#: Angiography-like views rendered from 3-D sources (TOF-MRA, CTA, 3DRA).
PROJECTION_VIEWS: tuple[ViewType, ...] = tuple(
    _projection(region, proj) for region in ("ALL", "L", "R", "POST") for proj in ("A", "B")
)
PROJECTION_VIEW_NAMES: tuple[str, ...] = tuple(v.name for v in PROJECTION_VIEWS)

#: Every known view type; the index of a name here is its embedding id in the model.
VIEW_TYPES: tuple[ViewType, ...] = KIUM_VIEWS + PROJECTION_VIEWS
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
    if v.side not in ("L", "R"):
        return name
    other = "R" if v.side == "L" else "L"
    if name in KIUM_VIEW_NAMES:
        return other + name[1:]
    return name.replace(f"-{v.side}-", f"-{other}-")
