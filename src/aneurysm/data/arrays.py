"""Study records -> dense arrays the model reads: views as uint8 stacks plus label tensors.

Everything is loaded once from the preprocessing cache; at K-ium scale (1,127 x 8 views) and the
sizes a CPU can train on this is a few hundred MB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..errors import DataError
from ..io.images import load_grayscale
from ..preprocessing import (
    ARTERY_UNKNOWN,
    CELL_UNKNOWN,
    ImageCache,
    artery_cells,
    footprint_cells,
)
from ..projection.stage import artery_path, footprint_path, read_positions
from ..schema import LOCATION_NAMES, NUM_LOCATIONS, StudyRecord, view_index
from .distributed import warm_shared
from .fine import FineViews, fine_views

#: Footprints are kept on a grid of (image size / this): the dense model's default map stride.
#: A model whose map is coarser pools them (``losses.on_map_grid``); a finer one asks for its own.
FOOTPRINT_STRIDE = 4


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
    #: (N, V, S/4, S/4) uint8 per map cell: 0 no aneurysm, 255 aneurysm, 128 unknown (every
    #: cell of a view whose source says nothing about where, e.g. K-ium)
    footprints: np.ndarray
    #: (N, V, S/4, S/4) uint8 per map cell: 1 + index into ARTERIES of the artery under it,
    #: 0 none, ARTERY_UNKNOWN where the source labels no arteries
    arteries: np.ndarray
    projected: np.ndarray  # (N,) bool: views rendered from a 3-D volume, not a real angiograph
    #: (M, V, F, F) uint8 views at ``preprocess.fine_size``, on disk (``data.fine``), and each
    #: study's row in it: a subset shares the file instead of copying its rows into RAM
    fine: FineViews | None = None
    fine_rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.study_ids)

    def subset(self, idx: np.ndarray | list[int]) -> "StudyArrays":
        idx = np.asarray(idx, dtype=int)
        return StudyArrays(
            [self.study_ids[i] for i in idx], [self.patient_ids[i] for i in idx],
            *(getattr(self, f)[idx] for f in _ARRAY_FIELDS),
            fine=self.fine, fine_rows=None if self.fine is None else self.fine_rows[idx],
        )

    def fine_view(self, i: int) -> np.ndarray | None:
        """Study ``i``'s (V, F, F) fine views, read from their file; None without them."""
        return None if self.fine is None else self.fine[int(self.fine_rows[i])]


_ARRAY_FIELDS = ("images", "view_ids", "view_mask", "presence", "presence_known", "locations",
                 "location_known", "group_members", "group_targets", "group_valid",
                 "footprints", "arteries", "projected")


def view_arteries(record: StudyRecord, cache: ImageCache, out: np.ndarray) -> None:
    """Fill each view's artery cells (``out``: (V, G, G), pre-filled unknown) where the
    projection stage drew an artery map (sources with artery labels)."""
    for j, v in enumerate(record.views):
        path = artery_path(v.path) if v.path and record.volume is not None else None
        if path is not None and path.is_file():
            out[j] = artery_cells(load_grayscale(path), load_grayscale(v.path), cache.config,
                                  out.shape[-1])


def view_footprints(record: StudyRecord, cache: ImageCache, out: np.ndarray) -> None:
    """Fill each view's footprint cells (``out``: (V, G, G), pre-filled unknown).

    Known for projected negatives (no aneurysm anywhere) and for projected positives with
    annotated positions; unknown otherwise, and for sources without positions (K-ium).
    """
    if record.volume is None or record.presence is None:
        return
    if record.presence and not read_positions(record):
        return
    for j, v in enumerate(record.views):
        path = footprint_path(v.path) if v.path else None
        if path is None or not path.is_file():
            continue
        out[j] = footprint_cells(load_grayscale(path), load_grayscale(v.path), cache.config,
                                 out.shape[-1])


@dataclass(frozen=True)
class Skipped:
    path: str
    problem: str


def footprint_stride(map_stride: int) -> int:
    """The footprint grid a model trains on: its map's, or the default where the map is coarser."""
    return min(FOOTPRINT_STRIDE, map_stride)


def build_arrays(records: list[StudyRecord], cache: ImageCache, skip_bad: bool = False,
                 workers: int | None = None, progress: bool = True,
                 shared: bool = False, footprint_stride: int = FOOTPRINT_STRIDE,
                 fine_cache: ImageCache | None = None,
                 ) -> tuple[StudyArrays, list[Skipped], list[str]]:
    """Arrays for ``records``; returns (arrays, skipped image files, dropped study ids).

    An unreadable image is an error naming the file unless ``skip_bad``; then its view is marked
    absent and counted. A study left with no usable view is dropped (and counted) under
    ``skip_bad``, an error otherwise. ``shared``: every torchrun rank is calling this with the
    same records, so each preprocesses its share into the one cache first. Footprints and
    artery maps come on a grid of ``footprint_stride`` pixels per cell. ``fine_cache`` (the
    second cache, at ``preprocess.fine_size``) adds the memory-mapped fine views.
    """
    paths = sorted({v.path for r in records for v in r.views if v.path})
    errors = warm_shared(cache, paths, workers, progress, shared)
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
    grid = max(size // footprint_stride, 1)
    footprints = np.full((n, n_views, grid, grid), CELL_UNKNOWN, dtype=np.uint8)
    arteries = np.full((n, n_views, grid, grid), ARTERY_UNKNOWN, dtype=np.uint8)
    for i, r in enumerate(tqdm(kept, desc="load arrays", unit="study", disable=not progress)):
        for j, v in enumerate(r.views):
            view_ids[i, j] = view_index(v.view)
            if v.path and v.path not in errors:
                images[i, j] = cache.load(v.path)
                view_mask[i, j] = True
        view_footprints(r, cache, footprints[i])
        view_arteries(r, cache, arteries[i])
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
        footprints=footprints, arteries=arteries,
        projected=np.array([r.volume is not None for r in kept], dtype=bool),
    )
    if fine_cache is not None:
        arrays.fine = fine_views(kept, fine_cache, n_views, errors, images, workers=workers,
                                 progress=progress, shared=shared)
        arrays.fine_rows = None if arrays.fine is None else np.arange(n)
    return arrays, skipped, dropped


def image_caches(cache_dir: str, config, second_look: bool = True
                 ) -> tuple[ImageCache, ImageCache | None]:
    """The first stage's cache and, where ``config.fine_size`` asks for one and the model has
    a ``second_look`` to read it, the second look's (``config``: the ``preprocess:``
    settings). A model without one ignores ``fine_size``, so switching models from a preset
    that sets it needs no other change."""
    fine = config.fine() if second_look else None
    return ImageCache(cache_dir, config), (ImageCache(cache_dir, fine) if fine else None)
