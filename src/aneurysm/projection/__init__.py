"""3-D volumes -> angiography-like 2-D views: canonical frame, isotropic grid, a C-arm's cone
beam through each injection's territory, a registry of projection modes (``modes``: DRR by
default), projected footprints and aneurysm positions, cached."""

from .config import ProjectionConfig
from .render import project_volume
from .stage import ProjectedSet, is_canonical, project_records

__all__ = ["ProjectedSet", "ProjectionConfig", "is_canonical", "project_records",
           "project_volume"]
