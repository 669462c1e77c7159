"""Projection settings (the ``projection:`` section of a YAML config): the C-arm, the renderer
and the poses that turn a 3-D volume into the eight K-ium views."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .drr import CArm
from .modes import PROJECTION_MODES

#: Bump when the algorithm changes, so no cached projection from older code is served.
ALGORITHM_VERSION = 5


@dataclass(frozen=True)
class ProjectionConfig:
    mode: str = "drr"  # a PROJECTION_MODES name: "drr" contrast path length, as DSA; "mip"
    spacing_mm: float = 0.0  # isotropic resampling; 0 = a detector pixel at the isocentre
    pixels: int = 0  # detector pixels per side; 0 = the run's preprocess.image_size
    sid_mm: float = 1100.0  # C-arm source-to-image distance
    sod_mm: float = 750.0  # source-to-isocentre distance (magnification ~1.47)
    fov_mm: float = 180.0  # field of view at the isocentre
    towne_deg: float = 20.0  # caudal tilt of frontal views of vertebral injections
    mu_per_mm: float = 0.33  # attenuation per mm of contrast-filled lumen (as the synthesizer)
    background: float = 205.0  # grey level of empty space, as on DSA
    contrast: float = 0.75  # mip: how dark the brightest vessel becomes
    territories: bool = True  # render each injection's territory, not the whole volume
    cta_window_low: float = 80.0  # HU: contrast-filled lumen starts here (partial volume too)
    cta_window_high: float = 450.0
    cta_bone_level: float = 700.0  # HU above which a voxel is bone, suppressed with a margin
    # Views of each volume at other C-arm angulations, for training only: pose 0 is the
    # canonical one; poses 1.. turn the head by up to ``pose_jitter_deg`` about its head-foot
    # and left-right axes (one random turn per volume and pose, drawn from its content).
    poses: int = 1
    pose_jitter_deg: float = 15.0
    #: a DICOM series with missing slices: "refuse" it (named), or "fill" them by
    #: interpolation. Uneven spacing is always resampled.
    slice_gaps: str = "refuse"

    def __post_init__(self) -> None:
        if self.mode not in PROJECTION_MODES:
            raise ValueError(f"projection mode must be one of {sorted(PROJECTION_MODES)}, got "
                             f"{self.mode!r}")
        if self.slice_gaps not in ("refuse", "fill"):
            raise ValueError(f"projection.slice_gaps must be refuse or fill, got "
                             f"{self.slice_gaps!r}")
        if self.poses < 1 or not 0 <= self.pose_jitter_deg <= 45:
            raise ValueError(f"projection poses must be >= 1 and pose_jitter_deg in [0, 45], "
                             f"got {self.poses} and {self.pose_jitter_deg}")

    def cache_params(self) -> dict:
        """What the canonical views depend on. The poses are not in it: each pose has a folder of
        its own, named by its angles, so adding poses keeps the canonical cache."""
        params = asdict(self)
        del params["poses"], params["pose_jitter_deg"]
        if params["slice_gaps"] == "refuse":  # a refused series has no cached views to key
            del params["slice_gaps"]
        return {"algorithm": ALGORITHM_VERSION, **params}

    def carm(self) -> CArm:
        return CArm(self.sid_mm, self.sod_mm, self.fov_mm, self.pixels or 128, self.towne_deg)

    def resolved(self, image_size: int) -> "ProjectionConfig":
        """Concrete values for the automatic ones: ``pixels: 0`` projects straight to the run's
        image size; ``spacing_mm: 0`` samples the volume as finely as a detector pixel sees at
        the isocentre (finer would cost time and show nothing more), between 0.5 and 2 mm (coarser
        would lose the vessels themselves)."""
        pixels = self.pixels or image_size
        spacing = self.spacing_mm or min(max(round(self.fov_mm / pixels, 2), 0.5), 2.0)
        return replace(self, pixels=pixels, spacing_mm=spacing)
