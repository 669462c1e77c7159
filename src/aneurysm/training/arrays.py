"""Study records -> dense arrays the model reads: views as uint8 stacks plus label tensors.

Everything is loaded once from the preprocessing cache; at K-ium scale (1,127 x 8 views) and the
sizes a CPU can train on this is a few hundred MB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import DataError
from ..preprocessing import ImageCache
from ..projection.stage import read_positions
from ..schema import LOCATION_NAMES, NUM_LOCATIONS, StudyRecord, view_index


@dataclass
class StudyArrays:
    study_ids: list[str]
    patient_ids: list[str]
    images: np.ndarray  # (N, V, S, S) uint8
    view_ids: np.ndarray  # (N, V) int64
    view_mask: np.ndarray  # (N, V) bool
    presence: np.ndarray  # (N,) float32
    presence_known: np.ndarray  # (N,) bool
    locations: np.ndarray  # (N, 21) float32
    location_known: np.ndarray  # (N, 21) bool
    group_members: np.ndarray  # (N, G, 21) float32
    group_targets: np.ndarray  # (N, G) float32
    group_valid: np.ndarray  # (N, G) bool
    view_points: np.ndarray  # (N, V, 3) float32: (has aneurysm, u, v) in [0, 1] image coords
    view_points_known: np.ndarray  # (N, V) bool: a point target exists for this view

    def __len__(self) -> int:
        return len(self.study_ids)

    def subset(self, idx: np.ndarray | list[int]) -> "StudyArrays":
        idx = np.asarray(idx, dtype=int)
        return StudyArrays(
            [self.study_ids[i] for i in idx], [self.patient_ids[i] for i in idx],
            *(getattr(self, f)[idx] for f in _ARRAY_FIELDS),
        )


_ARRAY_FIELDS = ("images", "view_ids", "view_mask", "presence", "presence_known", "locations",
                 "location_known", "group_members", "group_targets", "group_valid",
                 "view_points", "view_points_known")


def view_points(record: StudyRecord, out: np.ndarray, known: np.ndarray) -> None:
    """Fill (has, u, v) per view from a projected study's positions, in the coordinates of the
    preprocessed square image (the view is padded to a square, centred, then resized).

    Known for negatives (no aneurysm anywhere) and for positives with annotated positions;
    unknown otherwise, and for sources without positions (K-ium).
    """
    positions = read_positions(record)
    if record.volume is None or record.presence is None or (record.presence and not positions):
        return
    for j, v in enumerate(record.views):
        if not v.path:
            continue
        known[j] = True
        hits = [p for p in positions if p["view"] == v.view]
        if not hits:
            continue
        with Image.open(v.path) as img:
            w, h = img.size
        side = max(w, h)
        p = hits[0]
        out[j] = (1.0, (p["x"] + (side - w) // 2 + 0.5) / side,
                  (p["y"] + (side - h) // 2 + 0.5) / side)


@dataclass(frozen=True)
class Skipped:
    path: str
    problem: str


def build_arrays(records: list[StudyRecord], cache: ImageCache, skip_bad: bool = False,
                 workers: int | None = None,
                 progress: bool = True) -> tuple[StudyArrays, list[Skipped], list[str]]:
    """Arrays for ``records``; returns (arrays, skipped image files, dropped study ids).

    An unreadable image is an error naming the file unless ``skip_bad``; then its view is marked
    absent and counted. A study left with no usable view is dropped (and counted) under
    ``skip_bad``, an error otherwise.
    """
    paths = sorted({v.path for r in records for v in r.views if v.path})
    errors = cache.warm(paths, workers=workers, progress=progress)
    if errors and not skip_bad:
        path, problem = next(iter(sorted(errors.items())))
        raise DataError(path, f"{problem} ({len(errors)} unreadable image(s) in all; pass "
                              "--skip-bad to train without them)")
    skipped = [Skipped(p, e) for p, e in sorted(errors.items())]
    kept, dropped = [], []
    for r in records:
        usable = [v for v in r.views if v.path and v.path not in errors]
        if usable:
            kept.append(r)
        elif skip_bad:
            dropped.append(r.study_id)
        else:
            raise DataError(r.view_path(r.views[0].view) or r.study_id,
                            f"study {r.study_id} has no usable view")
    n_views = max((len(r.views) for r in kept), default=0)
    size = cache.config.image_size
    max_groups = max((len(r.groups) for r in kept), default=0)
    n = len(kept)
    images = np.zeros((n, n_views, size, size), dtype=np.uint8)
    view_ids = np.zeros((n, n_views), dtype=np.int64)
    view_mask = np.zeros((n, n_views), dtype=bool)
    members = np.zeros((n, max_groups, NUM_LOCATIONS), dtype=np.float32)
    targets = np.zeros((n, max_groups), dtype=np.float32)
    valid = np.zeros((n, max_groups), dtype=bool)
    points = np.zeros((n, n_views, 3), dtype=np.float32)
    points_known = np.zeros((n, n_views), dtype=bool)
    for i, r in enumerate(tqdm(kept, desc="load arrays", unit="study", disable=not progress)):
        for j, v in enumerate(r.views):
            view_ids[i, j] = view_index(v.view)
            if v.path and v.path not in errors:
                images[i, j] = cache.load(v.path)
                view_mask[i, j] = True
        view_points(r, points[i], points_known[i])
        for g, group in enumerate(r.groups):
            members[i, g, [LOCATION_NAMES.index(m) for m in group.members]] = 1.0
            targets[i, g] = float(group.positive)
            valid[i, g] = True
    arrays = StudyArrays(
        study_ids=[r.study_id for r in kept],
        patient_ids=[r.patient_id for r in kept],
        images=images, view_ids=view_ids, view_mask=view_mask,
        presence=np.array([r.presence or 0 for r in kept], dtype=np.float32),
        presence_known=np.array([r.presence is not None for r in kept], dtype=bool),
        locations=np.array([r.locations for r in kept], dtype=np.float32).reshape(n, -1),
        location_known=np.array([r.location_known for r in kept], dtype=bool).reshape(n, -1),
        group_members=members, group_targets=targets, group_valid=valid,
        view_points=points, view_points_known=points_known,
    )
    return arrays, skipped, dropped
