"""One schema for every source: views, the 21 locations, study records and manifests."""

from .locations import (
    LOCATION_NAMES,
    LOCATIONS,
    MIRROR_PERMUTATION,
    NUM_LOCATIONS,
    Location,
    location_index,
    mirror_location_name,
)
from .manifest import load_manifest, save_manifest
from .records import GroupLabel, StudyRecord, ViewImage, VolumeRef, fully_labelled
from .views import (
    KIUM_VIEW_NAMES,
    KIUM_VIEWS,
    PROJECTION_VIEW_NAMES,
    PROJECTION_VIEWS,
    VIEW_TYPES,
    ViewType,
    mirror_view_name,
    view_index,
    view_type,
)

#: The 23 official K-ium CSV columns, in order.
KIUM_COLUMNS: tuple[str, ...] = ("Index", "Aneurysm") + LOCATION_NAMES

__all__ = [
    "GroupLabel", "KIUM_COLUMNS", "KIUM_VIEWS", "KIUM_VIEW_NAMES", "LOCATIONS", "LOCATION_NAMES",
    "Location", "MIRROR_PERMUTATION", "NUM_LOCATIONS", "StudyRecord", "VIEW_TYPES", "ViewImage",
    "ViewType", "VolumeRef", "PROJECTION_VIEWS", "PROJECTION_VIEW_NAMES", "fully_labelled", "load_manifest", "location_index", "mirror_location_name",
    "mirror_view_name", "save_manifest", "view_index", "view_type",
]
