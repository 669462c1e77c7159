"""The second look's source: every study's views at ``preprocess.fine_size``, in one array
file on disk, read one study at a time.

1,127 patients x 8 views at 1024 px are about 9 GB as uint8: they never sit in RAM. A projected
study's fine views are its views cast again with more rays (``project_records(fine_pixels=)``),
where the projection stage rendered them. The array is written once per (records, fine
preprocessing) into the cache folder, beside the fine image cache it is read from, through a
memory map, and every later run reads the same file. Rows are read with plain file reads rather
than through a map: a mapped page that has been read counts in the process's resident memory
until the kernel reclaims it, a read page only in the page cache, which the kernel shares and
gives back at will.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..io.hashing import params_hash
from ..projection.stage import fine_path
from ..schema import StudyRecord, ViewImage
from .distributed import barrier, topology, warm_shared


class FineViews:
    """An (N, V, F, F) uint8 ``.npy`` file, row by row: ``views[i]`` reads study i's views."""

    def __init__(self, path: str | Path) -> None:
        mapped = np.load(path, mmap_mode="r")  # reads only the header
        self.path, self.shape, self.offset = Path(path), mapped.shape, mapped.offset
        del mapped
        self._row = int(np.prod(self.shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, row: int) -> np.ndarray:
        if not 0 <= row < len(self):
            raise IndexError(f"{self.path}: row {row} of {len(self)}")
        out = np.empty(self.shape[1:], dtype=np.uint8)
        with open(self.path, "rb") as f:
            f.seek(self.offset + int(row) * self._row)
            if f.readinto(memoryview(out).cast("B")) != self._row:
                raise OSError(f"{self.path}: truncated at row {row}")
        return out


def fine_views(records: list[StudyRecord], cache, n_views: int, errors: dict[str, str],
               coarse: np.ndarray, workers: int | None = None, progress: bool = True,
               shared: bool = False) -> FineViews | None:
    """(N, V, F, F) uint8 views for ``records`` in order (absent views 0), on disk; None when
    no study has a finer source (every one projected, none cast finer).

    ``cache`` is the fine ``ImageCache``. A projected study without its fine cast
    (``fine_source``) takes its ``coarse`` views (N, V, S, S) resized.
    """
    size = cache.config.image_size
    sources = [[fine_source(r, v, errors, size) for v in r.views] for r in records]
    paths = sorted({p for row in sources for p in row if p})
    if not paths:
        return None
    warm_shared(cache, paths, workers, progress, shared)
    t = topology()
    hashes = [[cache.content_hash(p or v.path) if p or (v.path and v.path not in errors) else ""
               for p, v in zip(row, r.views)] for row, r in zip(sources, records)]
    key = params_hash({"fine": cache.params, "views": n_views, "hashes": hashes,
                       "projected": [r.volume is not None for r in records]})
    path = cache.root / "fine" / f"{key}.npy"
    if t.is_main and not path.is_file():
        _write(path, records, sources, cache, n_views, errors, coarse, progress)
    if shared and t.distributed:
        barrier()
    return FineViews(path)


def fine_source(record: StudyRecord, view: ViewImage, errors: dict[str, str], size: int
                ) -> str | None:
    """The file a view's fine row is read from: a frame itself, or a projected view's cast at
    ``size`` rays; None for an absent view or a projected one without that cast."""
    if not view.path or view.path in errors:
        return None
    if record.volume is None:
        return view.path
    cast = fine_path(view.path, size)
    return str(cast) if cast.is_file() else None


def _write(path: Path, records: list[StudyRecord], sources: list[list[str | None]], cache,
           n_views: int, errors: dict[str, str], coarse: np.ndarray, progress: bool) -> None:
    """Row by row into a temporary file, then renamed: a killed run leaves no half array.

    The rows go through plain file writes, not a memory map: every page written through a map
    stays in the process's resident memory until it is unmapped, so writing 1,000 patients'
    views (2 GB at 512 px) would have cost 2 GB of RSS at its peak."""
    size = cache.config.image_size
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    header = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                       shape=(len(records), n_views, size, size))
    offset = header.offset  # the file is laid out (header, then sparse zeros); none touched
    del header
    try:
        with open(tmp, "r+b") as f:
            f.seek(offset)
            for i, r in enumerate(tqdm(records, desc="fine views", unit="study",
                                       disable=not progress)):
                row = np.zeros((n_views, size, size), dtype=np.uint8)
                for j, v in enumerate(r.views):
                    if sources[i][j]:
                        row[j] = cache.load(sources[i][j])
                    elif v.path and v.path not in errors:
                        row[j] = np.asarray(Image.fromarray(coarse[i, j]).resize(
                            (size, size), Image.Resampling.BILINEAR))
                f.write(memoryview(row).cast("B"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
