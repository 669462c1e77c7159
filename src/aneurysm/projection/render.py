"""Render one canonical volume as the eight K-ium views: each injection's territory, frontal and
lateral, through a C-arm's cone beam; with each view's aneurysm footprint and artery map.

``projection.mode`` names a renderer in ``PROJECTION_MODES``: ``drr`` (the default) integrates
the contrast path length along each ray and renders it as DSA does (an aneurysm darker than its
parent vessel, overlaps adding up); ``mip`` draws an inverted maximum-intensity projection
through the same geometry, for comparison. ``modes.register_projection_mode`` adds another.

The footprint of a view is the lesion label volume projected along the same rays through the
same territory: where an aneurysm lies on a ray, the pixel is aneurysm; where only an unknown
label does (a treated aneurysm, the uncertain rim around a point annotation), it is unknown.
The artery map names, per pixel, the labelled artery with the longest path along the ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from ..schema import KIUM_VIEWS, TERRITORIES
from .config import ProjectionConfig
from .drr import CArm, DetectorWindow, cone_project
from .modes import PROJECTION_MODES, Rays
from .territory import entry_seeds, grow_territories
from .volume_prep import occupancy, resample_isotropic, vessel_bright

#: Footprint pixel values: an aneurysm lies on the ray; only an unknown label does; nothing does.
FOOTPRINT_ANEURYSM, FOOTPRINT_UNKNOWN, FOOTPRINT_BACKGROUND = 255, 128, 0
#: Lesion label volume values (see ``project_volume``).
LESION, UNKNOWN = 1, 2
_CHUNK = 48  # slices projected at once: bounds memory at large detector sizes


@dataclass(frozen=True)
class ViewGeometry:
    """Where one view looks from: the injected territory, the beam and the C-arm, on the
    volume's isotropic grid of ``spacing`` mm."""
    region: str  # territory: "LI", "RI" (internal carotids) or "V" (vertebrobasilar)
    projection: str  # "A" frontal (beam posterior to anterior) or "B" lateral
    centre: np.ndarray  # the isocentre, in voxels
    spacing: float
    carm: CArm
    tilt_deg: float  # caudal tilt about the left-right axis (Towne's view)


@dataclass(frozen=True)
class AnnotatedVolume:
    """A volume on the isotropic grid with what the views draw from it."""
    value: np.ndarray  # what the projection mode reads
    lesions: np.ndarray | None  # LESION / UNKNOWN label volume
    arteries: np.ndarray | None  # artery ids
    territory: np.ndarray  # territory ids (1 + index into TERRITORIES)
    centres: list  # (input-grid voxel centre, radius in voxels) per aneurysm
    scale: np.ndarray  # input voxel -> isotropic voxel
    origin: np.ndarray  # the isotropic box's corner


@dataclass(frozen=True)
class Projected:
    views: dict[str, np.ndarray | None]  # uint8 image per K-ium view; None: nothing injected
    footprints: dict[str, np.ndarray]  # uint8 FOOTPRINT_* per present view
    arteries: dict[str, np.ndarray]  # uint8 per present view: 1 + index into ARTERIES, 0 none
    positions: list[dict]  # [{view, x, y, r}] aneurysm centres in view pixels
    #: uint8 image per present view: the same view cast with up to ``fine_pixels`` rays per side
    #: (the second look's source; ``_render_view``); empty unless asked for
    fine: dict[str, np.ndarray] = field(default_factory=dict)


def pose_rotation(turn_deg: float, tilt_deg: float) -> np.ndarray:
    """The rotation of a C-arm pose on canonical (x left-right, y posterior-anterior, z
    inferior-superior) coordinates: ``turn_deg`` about the head-foot axis (towards LAO or RAO),
    then ``tilt_deg`` about the left-right axis (cranial or caudal)."""
    a, b = np.deg2rad(turn_deg), np.deg2rad(tilt_deg)
    turn = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    return tilt @ turn


def _rotated(volumes: list[np.ndarray | None], orders: list[int], rotation: np.ndarray
             ) -> tuple[list[np.ndarray | None], np.ndarray, np.ndarray]:
    """Volumes turned by ``rotation`` about their centre into a box that holds all of them;
    returns them with the input's centre and the output's (a point p goes to R (p - c) + c')."""
    shape = np.array(next(v for v in volumes if v is not None).shape)
    c_in = (shape - 1) / 2
    corners = (np.indices((2, 2, 2)).reshape(3, -1).T * (shape - 1) - c_in) @ rotation.T
    out_shape = tuple(int(np.ceil(n)) + 1 for n in corners.max(0) - corners.min(0))
    c_out = (np.array(out_shape) - 1) / 2
    inverse = rotation.T  # output -> input
    turned = [None if v is None else ndimage.affine_transform(
        v, inverse, offset=c_in - inverse @ c_out, output_shape=out_shape, order=order,
        mode="constant", cval=0, prefilter=False) for v, order in zip(volumes, orders)]
    return turned, c_in, c_out


def _tilt(volume: np.ndarray, centre: np.ndarray, degrees: float, order: int) -> np.ndarray:
    """Rotate about the left-right axis through ``centre``: the points p move to R (p - c) + c
    with R the synthesizer's caudal tilt of a frontal vertebral view."""
    inverse = pose_rotation(0.0, degrees).T  # output -> input
    return ndimage.affine_transform(volume, inverse, offset=centre - inverse @ centre,
                                    order=order, mode="constant", cval=0.0, prefilter=False)


def _planes(volume: np.ndarray, projection: str) -> np.ndarray:
    """(x, y, z) -> (slice from source to detector, row, column). Frontal: the beam runs
    posterior to anterior, the patient's right on the image's left; lateral: it runs from the
    patient's right to left, the face on the image's left. Superior is up in both."""
    if projection == "A":
        return volume.transpose(1, 2, 0)[:, ::-1, ::-1]
    return volume[::-1].transpose(0, 2, 1)[:, ::-1, ::-1]


def _plane_coords(p: np.ndarray, shape: tuple[int, int, int], projection: str) -> np.ndarray:
    """The (slice, row, column) of canonical voxel coordinates ``p`` (..., 3) in ``_planes``."""
    nx, ny, nz = shape
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    if projection == "A":
        return np.stack([y, nz - 1 - z, nx - 1 - x], -1)
    return np.stack([nx - 1 - x, nz - 1 - z, ny - 1 - y], -1)


def _detector(point: np.ndarray, centre: np.ndarray, spacing: float, carm: CArm
              ) -> tuple[float, float]:
    """(column, row) on the detector, in pixels, of a plane-coordinate point."""
    offset = (point - centre) * spacing
    m = carm.sid_mm / (carm.sod_mm + offset[0])
    pitch = carm.fov_mm * (carm.sid_mm / carm.sod_mm) / carm.pixels
    return (float(offset[2] * m / pitch + carm.pixels / 2 - 0.5),
            float(offset[1] * m / pitch + carm.pixels / 2 - 0.5))


def _project(channels: list[np.ndarray], projection: str, centre: np.ndarray, spacing: float,
             carm: CArm, reduce: str, window: DetectorWindow | None = None) -> torch.Tensor:
    """Project (x, y, z) volumes along one view's beam, in chunks of slices: (C, P, P), on the
    whole detector or on ``window`` of it."""
    planes = np.stack([_planes(c, projection) for c in channels])  # (C, K, A, B)
    origin = _plane_coords(centre, channels[0].shape, projection)
    out = None
    for start in range(0, planes.shape[1], _CHUNK):
        part = torch.from_numpy(np.ascontiguousarray(planes[:, start:start + _CHUNK]))
        local = (origin[0] - start, origin[1], origin[2])
        result = cone_project(part, spacing, local, carm, reduce, window)
        out = result if out is None else (torch.maximum(out, result) if reduce == "max"
                                          else out + result)
    return out


def project_volume(data: np.ndarray, spacing: tuple[float, float, float], modality: str,
                   config: ProjectionConfig, lesions: list[tuple[np.ndarray, float]] = (),
                   labels: np.ndarray | None = None, arteries: np.ndarray | None = None,
                   seeds: np.ndarray | None = None, pose: tuple[float, float] = (0.0, 0.0),
                   windows: dict[str, DetectorWindow] | None = None, fine_pixels: int = 0
                   ) -> Projected:
    """The eight K-ium views of one canonical volume.

    ``lesions``: (canonical voxel centre, radius in voxels) on the input grid; ``labels``: lesion
    label volume (0, ``LESION``, ``UNKNOWN``) on that grid; ``arteries``: artery ids (1 + index
    into ``ARTERIES``) on that grid; ``seeds``: territory ids (1 + index into ``TERRITORIES``)
    where labelled arteries say which injection fills them. Without seeds, the vessels entering
    the volume's bottom are the injections' entries. ``pose``: the C-arm turned and tilted by
    these degrees (``pose_rotation``), the annotations with it. ``windows``: only these views,
    each rendered on its own part of the detector (a crop read finer than the view, casting
    only the rays through it); images, footprints and artery maps are then the windows', and
    aneurysm centres stay in the whole view's pixels. ``fine_pixels``: each view also cast on
    the whole detector with this many rays per side (image only), so a crop of it shows what the
    volume holds at a finer pitch than the view's, not the view's pixels enlarged.
    """
    config = config.resolved(config.pixels or 128)
    s = fine_spacing(config, spacing, fine_pixels) if fine_pixels else config.spacing_mm
    iso = resample_isotropic(data, spacing, s)
    bright = vessel_bright(iso, modality, (config.cta_window_low, config.cta_window_high),
                           config.cta_bone_level)
    lesion_iso, artery_iso, seed_iso = (
        resample_isotropic(v, spacing, s, order=0) if v is not None else None
        for v in (labels, arteries, seeds))
    occ = occupancy(bright)
    # everything below works on the box that holds the vessels and the annotations
    keep = occ > 0.05
    for extra in (lesion_iso, artery_iso):
        if extra is not None:
            keep |= extra > 0
    box = _bounding_box(keep, margin=4)
    origin = np.array([b.start for b in box])
    occ, bright = occ[box], bright[box]
    lesion_iso, artery_iso, seed_iso = (v[box] if v is not None else None
                                        for v in (lesion_iso, artery_iso, seed_iso))
    mask = occ > 0.3
    if lesion_iso is not None:
        mask |= (lesion_iso == LESION) & (occ > 0.1)
    if config.territories:
        if seed_iso is None or not (seed_iso.astype(bool) & mask).any():
            seed_iso = entry_seeds(mask, s)
        territory = grow_territories(occ > 0.1, seed_iso, s, fill=occ)
        if territory.any():  # detached pieces, partial-volume rims and lesion labels take
            _, nearest = ndimage.distance_transform_edt(territory == 0, return_indices=True)
            territory = territory[tuple(nearest)]  # the territory of their nearest vessel
        territory = np.where(seed_iso > 0, seed_iso, territory)  # a labelled artery stays put
    else:
        territory = np.ones(occ.shape, dtype=np.uint8)
    scale = np.array(spacing) / s
    if any(pose):  # turn the head, territories and annotations with it, not the C-arm
        rotation = pose_rotation(*pose)
        (occ, bright, lesion_iso, artery_iso, territory), c_in, c_out = _rotated(
            [occ, bright, lesion_iso, artery_iso, territory], [1, 1, 0, 0, 0], rotation)
        lesions = [((rotation @ (np.asarray(c) * scale - origin - c_in) + c_out + origin)
                    / scale, radius) for c, radius in lesions]
    weight = np.maximum(occ, 1e-6)
    grid = np.indices(occ.shape).reshape(3, -1)
    centre = (grid @ weight.ravel()) / weight.sum()
    carm = config.carm()
    mode = PROJECTION_MODES[config.mode]
    volume = AnnotatedVolume(occ if mode.reads == "occupancy" else bright, lesion_iso,
                             artery_iso, territory, list(lesions), scale, origin)
    result = Projected({}, {}, {}, [])
    done: dict[tuple[str, str, DetectorWindow | None], tuple] = {}
    for view in KIUM_VIEWS:
        if windows is not None and view.name not in windows:
            continue
        window = None if windows is None else windows[view.name]
        region = "V" if view.artery == "VA" else view.side + "I"
        projection = "A" if view.projection == "frontal" else "B"
        key = (region, projection, window)
        if key not in done:
            tilt = config.towne_deg if (region == "V" and projection == "A") else 0.0
            done[key] = _render_view(volume, ViewGeometry(region, projection, centre, s, carm,
                                                          tilt), config, window, fine_pixels)
        image, footprint, artery_map, points, fine = done[key]
        result.views[view.name] = image
        if image is None:
            continue
        if fine is not None:
            result.fine[view.name] = fine
        result.footprints[view.name] = footprint
        result.arteries[view.name] = artery_map
        result.positions.extend({"view": view.name, **p} for p in points)
    return result


def fine_spacing(config: ProjectionConfig, spacing: tuple[float, float, float],
                 fine_pixels: int) -> float:
    """The grid a view cast with ``fine_pixels`` rays is sampled from: as fine as a fine ray's
    pitch at the isocentre, no finer than the volume's own voxels (that would add smoothness,
    not detail) nor than 0.5 mm, never coarser than the view's own grid."""
    pitch = config.fov_mm / fine_pixels
    return min(config.spacing_mm, max(pitch, min(spacing), 0.5))


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Slices of the smallest box holding ``mask``, grown by ``margin`` (the whole volume if
    the mask is empty)."""
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis in range(mask.ndim):
        hit = np.nonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))[0]
        box.append(slice(max(int(hit[0]) - margin, 0),
                         min(int(hit[-1]) + margin + 1, mask.shape[axis])))
    return tuple(box)


def _render_view(volume: AnnotatedVolume, view: ViewGeometry, config: ProjectionConfig,
                 window: DetectorWindow | None = None, fine_pixels: int = 0):
    """One view's image, footprint, artery map (on ``window`` of the detector, if given),
    aneurysm centres and its image cast with ``fine_pixels`` rays per side (None for 0); Nones
    where the view's territory holds no vessel."""
    inside = (volume.territory == (TERRITORIES.index(view.region) + 1) if config.territories
              else volume.territory > 0)
    if not inside.any():
        return None, None, None, [], None
    tilt, centre, s, carm = view.tilt_deg, view.centre, view.spacing, view.carm

    def view_of(v: np.ndarray, order: int) -> np.ndarray:
        v = np.where(inside, v, 0).astype(np.float32)
        return _tilt(v, centre, tilt, order) if tilt else v

    lesion_iso, artery_iso = volume.lesions, volume.arteries
    channels = [view_of(volume.value, 1)]
    names = ["value"]
    annotated = lesion_iso is not None and bool((lesion_iso[inside] > 0).any())
    if annotated:
        channels += [view_of(lesion_iso == LESION, 1), view_of(lesion_iso == UNKNOWN, 1)]
        names += ["lesion", "unknown"]
    present = [] if artery_iso is None else [int(a) for a in np.unique(artery_iso[inside]) if a]
    channels += [view_of(artery_iso == a, 1) for a in present]
    sums = _project(channels, view.projection, centre, s, carm, "sum", window)
    image = _image(sums[0], channels[0], view, config, window)
    fine = None
    if fine_pixels:
        # two rays per voxel of the grid at most: more would interpolate, not resolve (the
        # image cache brings every cast to the fine size)
        rays = min(fine_pixels, 2 * math.ceil(config.fov_mm / s))
        whole = DetectorWindow(0.0, 0.0, float(carm.pixels), rays)
        fine = _image(_project(channels[:1], view.projection, centre, s, carm, "sum", whole)[0],
                      channels[0], view, config, whole)
    footprint = np.full(image.shape, FOOTPRINT_BACKGROUND, dtype=np.uint8)
    if annotated:  # a ray through >= 0.3 mm of lesion or unknown voxels
        footprint[sums[2].numpy() >= 0.3 * s] = FOOTPRINT_UNKNOWN
        footprint[sums[1].numpy() >= 0.3 * s] = FOOTPRINT_ANEURYSM
    artery_map = np.zeros(image.shape, dtype=np.uint8)
    if present:
        lengths = sums[len(names):].numpy()
        best = lengths.argmax(0)
        artery_map = np.where(lengths.max(0) >= 0.5 * s, np.array(present)[best], 0).astype(np.uint8)
    shape = volume.value.shape
    projection, scale = view.projection, volume.scale
    isocentre = _plane_coords(centre, shape, projection)
    points = []
    for c, radius in volume.centres:
        p = np.asarray(c) * scale - volume.origin
        voxel = tuple(np.clip(np.rint(p).astype(int), 0, np.array(shape) - 1))
        if not inside[voxel]:
            continue
        if tilt:
            p = pose_rotation(0.0, tilt) @ (p - centre) + centre
        x, y = _detector(_plane_coords(p, shape, projection), isocentre, s, carm)
        m = carm.sid_mm / carm.sod_mm
        pitch = carm.fov_mm * m / carm.pixels
        points.append({"x": round(x, 1), "y": round(y, 1),
                       "r": round(float(radius * scale.mean() * s * m / pitch), 1)})
    return image, footprint, artery_map, points, fine


def _image(total: torch.Tensor, value: np.ndarray, view: ViewGeometry, config: ProjectionConfig,
           window: DetectorWindow | None) -> np.ndarray:
    """The projection mode's grey levels from the path lengths ``total`` through ``value``."""
    rays = Rays(total.numpy(), lambda: _project([value], view.projection, view.centre,
                                                view.spacing, view.carm, "max", window)[0].numpy())
    return PROJECTION_MODES[config.mode].render(rays, config)
