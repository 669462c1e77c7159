"""A procedural 3-D model of the Circle of Willis and its major branches, with named segments.

Coordinates are millimetres in a RAS+ frame (x to the patient's right, y anterior, z superior)
with the origin near the centre of the Circle of Willis. Every aneurysm is a saccular sphere on
the wall of the segment its K-ium location names, so labels are right by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..schema.locations import LOCATION_NAMES

INJECTIONS = ("LI", "RI", "LV", "RV")


@dataclass(frozen=True, eq=False)
class Segment:
    name: str
    location: str | None  # the K-ium location this vessel belongs to; None for small branches
    points: np.ndarray  # (N, 3) centreline, mm
    radii: np.ndarray  # (N,) lumen radius, mm
    fills: dict[str, float] = field(default_factory=dict)  # injection -> contrast 0..1

    def point_at(self, t: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Centreline point, unit tangent and radius at arc-length fraction ``t``."""
        seg = np.diff(self.points, axis=0)
        lengths = np.linalg.norm(seg, axis=1)
        cum = np.concatenate([[0.0], np.cumsum(lengths)])
        s = float(np.clip(t, 0.0, 1.0)) * cum[-1]
        i = int(np.clip(np.searchsorted(cum, s) - 1, 0, len(seg) - 1))
        frac = (s - cum[i]) / max(lengths[i], 1e-9)
        p = self.points[i] + frac * seg[i]
        tangent = seg[i] / max(lengths[i], 1e-9)
        r = float(self.radii[i] + frac * (self.radii[i + 1] - self.radii[i]))
        return p, tangent, r


@dataclass(frozen=True, eq=False)
class Sphere:
    """A saccular aneurysm (``location`` set) or a confounding infundibulum (``location`` None)."""

    center: np.ndarray
    radius: float
    segment: str
    location: str | None


@dataclass(frozen=True, eq=False)
class Anatomy:
    segments: tuple[Segment, ...]
    spheres: tuple[Sphere, ...]

    def segment(self, name: str) -> Segment:
        for s in self.segments:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def aneurysms(self) -> tuple[Sphere, ...]:
        return tuple(s for s in self.spheres if s.location is not None)

    @property
    def labels(self) -> tuple[int, ...]:
        present = {s.location for s in self.aneurysms}
        return tuple(int(n in present) for n in LOCATION_NAMES)


# --- the template (left side; the right side is its mirror image) ---------------------------
# name: (location, control points, radius at start, radius at end, fills for the LEFT-side copy)
_LEFT_TEMPLATE: dict[str, tuple] = {
    "ICA": ("ICA", [(-24, -8, -95), (-22, -6, -70), (-20, -4, -45), (-19, -9, -36), (-17, 2, -30),
                    (-15, 10, -22), (-16, 12, -14), (-15, 6, -8), (-14, 2, -2), (-14, 0, 3)],
            2.4, 1.9, {"I": 1.0}),
    "AntChor": ("AntChor", [(-14.5, 1, -1), (-19, -5, 1), (-23, -14, 3), (-25, -22, 6)],
                0.55, 0.4, {"I": 1.0}),
    "PCOM": ("PCOM", [(-14.5, 0.5, -1), (-13, -8, -2), (-11, -15, -2), (-10, -16, -2)],
             0.75, 0.7, {"I": 0.9}),
    "ACA": ("ACA", [(-14, 0, 3), (-9, 6, 5), (-3, 11, 6), (-3, 16, 12), (-4, 26, 24), (-4, 32, 40),
                    (-4, 25, 55), (-4, 10, 63), (-4, -10, 66)], 1.3, 0.9, {"I": 1.0}),
    "MCA": ("MCA", [(-14, 0, 3), (-22, 1, 4), (-30, 2, 5), (-36, 2, 6)], 1.55, 1.25, {"I": 1.0}),
    "MCA_sup": ("MCA", [(-36, 2, 6), (-40, 0, 15), (-44, -5, 28), (-46, -12, 40)], 1.0, 0.8,
                {"I": 1.0}),
    "MCA_inf": ("MCA", [(-36, 2, 6), (-42, -2, 6), (-46, -10, 10), (-50, -22, 14)], 1.0, 0.8,
                {"I": 1.0}),
    "VA": ("VA", [(-14, -22, -100), (-13, -24, -75), (-12, -28, -55), (-8, -26, -42),
                  (-2, -22, -34), (0, -21, -32)], 1.9, 1.7, {"V": 1.0}),
    "PICA": ("PICA", [(-11, -27, -50), (-16, -32, -55), (-20, -40, -52), (-16, -48, -45),
                      (-12, -55, -40)], 0.75, 0.6, {"V": 0.9}),
    "SCA": ("SCA", [(0, -16.5, -7), (-8, -19, -8), (-16, -26, -7), (-22, -36, -3), (-20, -46, 2)],
            0.85, 0.6, {"V": 0.9, "V_other": 0.9}),
    "PCA": ("PCA", [(0, -16, -4), (-6, -16, -3), (-10, -16, -2), (-18, -24, 0), (-24, -36, 4),
                    (-24, -50, 8), (-18, -66, 12)], 1.3, 1.0, {"V": 0.9, "V_other": 0.9}),
}
_MIDLINE_TEMPLATE: dict[str, tuple] = {
    "BA": ("BA", [(0, -21, -32), (0, -19, -20), (0, -17, -10), (0, -16, -4)], 1.9, 1.6,
           {"LV": 0.95, "RV": 0.95}),
    "ACOM": (None, [(-3, 11, 6), (0, 11.5, 6.5), (3, 11, 6)], 0.7, 0.7, {"LI": 0.8, "RI": 0.8}),
}

#: Where on which segment an aneurysm of each location sits: (segment, t_from, t_to).
PLACEMENT: dict[str, tuple[str, float, float]] = {
    "ICA": ("ICA", 0.55, 0.97), "PCOM": ("PCOM", 0.0, 0.25), "AntChor": ("AntChor", 0.0, 0.25),
    "ACA": ("ACA", 0.1, 0.8), "MCA": ("MCA", 0.55, 1.0), "VA": ("VA", 0.45, 0.95),
    "PICA": ("PICA", 0.0, 0.3), "SCA": ("SCA", 0.0, 0.3), "PCA": ("PCA", 0.05, 0.6),
}

#: Roots of the cortical branch trees: (segment, t) for each side.
_BRANCH_ROOTS = (("MCA_sup", 1.0), ("MCA_inf", 1.0), ("MCA_sup", 0.5), ("ACA", 0.55),
                 ("ACA", 1.0), ("PCA", 1.0), ("PCA", 0.6), ("SCA", 1.0), ("PICA", 1.0))


def _resample(points: np.ndarray, step: float = 0.5, smooth: float = 1.5) -> np.ndarray:
    """Densely resample a polyline by arc length and smooth it (keeping the end points)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(int(cum[-1] / step), 2) + 1
    s = np.linspace(0.0, cum[-1], n)
    dense = np.stack([np.interp(s, cum, points[:, k]) for k in range(3)], axis=1)
    width = max(int(smooth / step), 1)
    if n > 2 * width + 1:
        kernel = np.exp(-0.5 * (np.arange(-2 * width, 2 * width + 1) / width) ** 2)
        kernel /= kernel.sum()
        padded = np.pad(dense, ((2 * width, 2 * width), (0, 0)), mode="edge")
        sm = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(3)], axis=1)
        sm[0], sm[-1] = dense[0], dense[-1]
        dense = sm
    return dense


def _jitter(points: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    noise = rng.normal(0.0, sigma, size=points.shape)
    noise[0] = 0.0  # keep the origin on the parent vessel
    return points + noise


def _fills_for(side: str, template_fills: dict[str, float]) -> dict[str, float]:
    other = "R" if side == "L" else "L"
    fills: dict[str, float] = {}
    for key, value in template_fills.items():
        if key == "I":
            fills[f"{side}I"] = value
        elif key == "V":
            fills[f"{side}V"] = value
        elif key == "V_other":
            fills[f"{other}V"] = value
        else:
            fills[key] = value
    return fills


def _grow_tree(rng: np.random.Generator, start: np.ndarray, direction: np.ndarray, radius: float,
               depth: int, fills: dict[str, float], name: str, out: list[Segment]) -> None:
    if depth == 0 or radius < 0.25:
        return
    centre = np.array([0.0, -5.0, 15.0])
    outward = start - centre
    outward /= max(np.linalg.norm(outward), 1e-6)
    d = direction + 0.6 * outward + rng.normal(0, 0.5, 3)
    d /= np.linalg.norm(d)
    length = rng.uniform(7.0, 15.0)
    n_ctrl = 4
    pts = [start]
    for _ in range(n_ctrl):
        d = d + rng.normal(0, 0.35, 3)
        d /= np.linalg.norm(d)
        pts.append(pts[-1] + d * length / n_ctrl)
    pts_arr = _resample(np.array(pts), step=0.5, smooth=1.0)
    radii = np.linspace(radius, radius * 0.8, len(pts_arr))
    out.append(Segment(name, None, pts_arr, radii, dict(fills)))
    for k in range(2):
        _grow_tree(rng, pts_arr[-1], d, radius * rng.uniform(0.7, 0.85), depth - 1, fills,
                   f"{name}.{k}", out)


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """One patient's vessels: template + smooth jitter + common anatomical variants."""
    scale = rng.uniform(0.9, 1.1)
    radius_scale = rng.uniform(0.85, 1.15)
    fetal_pcom = {s: rng.random() < 0.12 for s in "LR"}
    cross_fill = {s: rng.random() < 0.4 for s in "LR"}  # contralateral A2 filling via ACOM
    va_reflux = {s: rng.random() < 0.5 for s in "LR"}
    pcom_retro = rng.random() < 0.5
    segments: list[Segment] = []

    def add(name: str, location: str | None, ctrl: list, r0: float, r1: float,
            fills: dict[str, float]) -> None:
        pts = _jitter(np.asarray(ctrl, dtype=float) * scale, rng, 1.2)
        dense = _resample(pts)
        radii = np.linspace(r0, r1, len(dense)) * radius_scale
        segments.append(Segment(name, location, dense, radii, fills))

    for side in "LR":
        other = "R" if side == "L" else "L"
        for key, (artery, ctrl, r0, r1, tfills) in _LEFT_TEMPLATE.items():
            mirrored = [(-x if side == "R" else x, y, z) for x, y, z in ctrl]
            fills = _fills_for(side, tfills)
            if artery == "ACA" and cross_fill[other]:
                fills[f"{other}I"] = 0.45
            if artery == "PCOM" and pcom_retro:
                fills["LV"] = fills["RV"] = 0.3
            if artery == "VA" and va_reflux[side]:
                fills[f"{other}V"] = 0.5
            if artery == "PICA" and va_reflux[side]:
                fills[f"{other}V"] = 0.45
            if artery == "PCA" and fetal_pcom[side]:
                fills[f"{side}I"] = 0.7
            location = f"{side}_{artery}" if artery else None
            add(f"{side}_{key}", location, mirrored, r0, r1, fills)
    for key, (location, ctrl, r0, r1, fills) in _MIDLINE_TEMPLATE.items():
        add(key, location, ctrl, r0, r1, dict(fills))

    by_name = {s.name: s for s in segments}
    branches: list[Segment] = []
    for side in "LR":
        for root, t in _BRANCH_ROOTS:
            parent = by_name[f"{side}_{root}"]
            p, tangent, r = parent.point_at(t)
            _grow_tree(rng, p, tangent, min(r * 0.75, 0.8), 4, parent.fills,
                       f"{side}_{root}~{t}", branches)
    segments.extend(branches)

    # Junctional dilatations (infundibula) confound a detector on negatives and positives alike.
    spheres: list[Sphere] = []
    for _ in range(rng.poisson(1.0)):
        s = segments[rng.integers(0, 22)]
        p, tangent, r = s.point_at(rng.uniform(0.0, 1.0))
        direction = _perpendicular(tangent, rng)
        rad = rng.uniform(0.6, 1.1)
        spheres.append(Sphere(p + direction * (r + 0.3 * rad), rad, s.name, None))
    return Anatomy(tuple(segments), tuple(spheres))


def _perpendicular(tangent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    v -= v.dot(tangent) * tangent
    return v / max(np.linalg.norm(v), 1e-9)


def sample_aneurysm_radius(rng: np.random.Generator) -> float:
    """Saccular aneurysm radius in mm: mostly small (median ~2.2 mm), a few large."""
    return float(np.clip(rng.lognormal(np.log(2.2), 0.45), 1.0, 7.0))


def add_aneurysms(anatomy: Anatomy, locations: list[str], rng: np.random.Generator) -> Anatomy:
    """Place one saccular aneurysm per named K-ium location on the wall of its segment."""
    spheres = list(anatomy.spheres)
    for loc in locations:
        if loc.endswith("ACOM"):
            seg_name = "ACOM"
            t0, t1 = (0.0, 0.45) if loc.startswith("L_") else (0.55, 1.0)
        else:
            side, _, artery = loc.partition("_") if "_" in loc else ("", "", loc)
            base, t0, t1 = PLACEMENT[artery] if artery in PLACEMENT else ("BA", 0.7, 1.0)
            seg_name = f"{side}_{base}" if side else base
        seg = anatomy.segment(seg_name)
        p, tangent, r = seg.point_at(rng.uniform(t0, t1))
        radius = sample_aneurysm_radius(rng)
        direction = _perpendicular(tangent, rng)
        if seg_name == "BA" and t0 >= 0.7:
            direction = 0.6 * direction + 0.8 * tangent  # basilar tip aneurysms point up
            direction /= np.linalg.norm(direction)
        center = p + direction * (r + 0.6 * radius)
        spheres.append(Sphere(center, radius, seg_name, loc))
        if rng.random() < 0.3:  # a daughter sac makes the shape irregular
            d2 = _perpendicular(direction, rng)
            spheres.append(Sphere(center + (0.7 * radius) * (0.7 * direction + 0.7 * d2),
                                  0.45 * radius, seg_name, loc))
    return Anatomy(anatomy.segments, tuple(spheres))
