"""A digitally reconstructed angiogram: contrast path length along cone-beam rays of a C-arm.

DSA shows log(mask frame) - log(contrast frame): the iodine along each ray, so an aneurysm is
darker than its parent vessel (a longer path through contrast) and overlapping vessels add up.
A maximum-intensity projection keeps none of this. Here a volume of soft vessel occupancy
(0 outside the lumen, 1 inside) is integrated along the rays from the X-ray source to each
detector pixel, and rendered as ``background * exp(-mu * L)``.

The C-arm is a cone beam: the source sits ``sod`` mm from the isocentre and ``sid`` mm from the
detector, so a structure is magnified by sid / (its distance from the source). The projector
uses that directly: each slice perpendicular to the central ray is a scaled copy on the
detector, so the whole projection is one batched 2-D ``grid_sample`` over the slices (4 taps
per sample instead of a 3-D trilinear ray cast's 8), then a sum along the beam.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


@dataclass(frozen=True)
class CArm:
    sid_mm: float = 1100.0  # source to image (detector)
    sod_mm: float = 750.0  # source to isocentre: magnification sid / sod ~ 1.47 at the centre
    fov_mm: float = 180.0  # width of the field of view at the isocentre plane
    pixels: int = 192  # detector pixels per side
    towne_deg: float = 20.0  # caudal tilt of the frontal view of a vertebral injection

    def params(self) -> dict:
        return asdict(self)


def tilt(volume: np.ndarray, degrees: float, order: int = 1) -> np.ndarray:
    """Rotate a canonical (x, y, z) volume about the x axis (left-right) through its centre:
    a caudal angulation of the beam of a frontal view."""
    if abs(degrees) < 1e-6:
        return volume
    return ndimage.rotate(volume, degrees, axes=(1, 2), reshape=False, order=order,
                          mode="constant", cval=0.0, prefilter=False)


@dataclass(frozen=True)
class DetectorWindow:
    """A square part of the detector, rendered on its own: ``size`` detector pixels from its
    top-left corner (``left``, ``top``, in detector pixels, fractions allowed), sampled at
    ``samples`` rays per side. Only the rays through the window are cast, so a crop around a
    footprint can be rendered finer than the whole view at a fraction of its cost."""
    left: float
    top: float
    size: float
    samples: int

    def offsets(self, carm: CArm) -> tuple[torch.Tensor, torch.Tensor]:
        """The rays' detector offsets from the central ray, in mm: (rows, columns)."""
        p = carm.pixels
        pitch = carm.fov_mm * (carm.sid_mm / carm.sod_mm) / p  # detector pixel, mm
        step = (torch.arange(self.samples, dtype=torch.float32) + 0.5) * (self.size / self.samples)
        return tuple((step + (start - p / 2)) * pitch for start in (self.top, self.left))


def whole_detector(carm: CArm) -> DetectorWindow:
    return DetectorWindow(0.0, 0.0, float(carm.pixels), carm.pixels)


def cone_project(planes: torch.Tensor, spacing_mm: float, centre: tuple[float, float, float],
                 carm: CArm, reduce: str = "sum", window: DetectorWindow | None = None
                 ) -> torch.Tensor:
    """Project a stack of slices along the beam onto the detector, or onto ``window`` of it.

    ``planes``: (C, K, A, B): C channels of K slices perpendicular to the beam, ordered from the
    source side to the detector side; A runs along detector rows, B along detector columns.
    ``centre``: the isocentre as (slice, row, column) voxel coordinates. Returns (C, P, P),
    P the detector's pixels or the window's samples: the sum (path length in mm, times each
    channel's value) or the maximum along each ray.
    """
    c, k, a, b = planes.shape
    window = window or whole_detector(carm)
    p = window.samples
    u_rows, u_cols = window.offsets(carm)  # ray positions, mm from the central ray
    depth = (torch.arange(k, dtype=torch.float32) - centre[0]) * spacing_mm
    magnification = carm.sid_mm / (carm.sod_mm + depth)  # (K,)
    # a detector offset u sees, on slice k, the point u / m_k mm from the central ray
    rows = (u_rows[None, :] / magnification[:, None]) / spacing_mm + centre[1]  # (K, P) voxels
    cols = (u_cols[None, :] / magnification[:, None]) / spacing_mm + centre[2]
    grid = torch.stack([
        (2 * cols[:, None, :].expand(k, p, p) + 1) / b - 1,  # x: columns, align_corners=False
        (2 * rows[:, :, None].expand(k, p, p) + 1) / a - 1,  # y: rows
    ], -1)
    slices = planes.permute(1, 0, 2, 3)  # (K, C, A, B)
    sampled = F.grid_sample(slices, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (K, C, P, P)
    if reduce == "max":
        return sampled.amax(0)
    # the path through one slice is longer off the central ray: spacing / cos(angle)
    ray = torch.sqrt(1 + (u_rows[None, :, None] / carm.sid_mm) ** 2
                     + (u_cols[None, None, :] / carm.sid_mm) ** 2)
    return sampled.sum(0) * spacing_mm * ray


def render(path_mm: np.ndarray, mu_per_mm: float, background: float) -> np.ndarray:
    """Beer-Lambert: ``background * exp(-mu * L)`` as uint8, dark vessels on a light ground."""
    return np.clip(np.rint(background * np.exp(-mu_per_mm * path_mm)), 0, 255).astype(np.uint8)


def magnification(carm: CArm) -> float:
    return carm.sid_mm / carm.sod_mm


def half_angle_deg(carm: CArm) -> float:
    """Half the cone's opening at the detector, for the record."""
    return math.degrees(math.atan(carm.fov_mm * magnification(carm) / 2 / carm.sid_mm))
