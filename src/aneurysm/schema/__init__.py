"""One schema for every source: views, the 21 locations, study records and manifests."""

from .locations import (
    ARTERIES,
    LOCATION_NAMES,
    LOCATIONS,
    MIRROR_PERMUTATION,
    NUM_LOCATIONS,
    Location,
    location_index,
    mirror_location_name,
)
from .manifest import load_manifest, save_manifest
from .records import (
    TERRITORIES,
    GroupLabel,
    StudyRecord,
    ViewImage,
    VolumeRef,
    fully_labelled,
)
from .views import (
    KIUM_VIEW_NAMES,
    KIUM_VIEWS,
    VIEW_TYPES,
    ViewType,
    mirror_view_name,
    view_index,
    view_type,
)

#: The 23 official K-ium CSV columns, in order.
KIUM_COLUMNS: tuple[str, ...] = ("Index", "Aneurysm") + LOCATION_NAMES

__all__ = [
    "ARTERIES", "GroupLabel", "KIUM_COLUMNS", "KIUM_VIEWS", "KIUM_VIEW_NAMES", "LOCATIONS", "LOCATION_NAMES",
    "Location", "MIRROR_PERMUTATION", "NUM_LOCATIONS", "StudyRecord", "VIEW_TYPES", "ViewImage",
    "ViewType", "VolumeRef", "fully_labelled", "load_manifest", "location_index",
    "mirror_location_name",
    "mirror_view_name", "save_manifest", "TERRITORIES", "view_index", "view_type",
]
