"""An on-disk cache of preprocessed angiograms, built on MONAI's PersistentDataset.

MONAI keys a cache entry by hashing the data item; we put the file's content hash and the
preprocessing parameters *into* the item and hash only those, so a changed parameter or a changed
file can never be served a stale entry, and a moved folder still hits the cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from monai.data import PersistentDataset
from monai.transforms import MapTransform
from tqdm import tqdm

from ..errors import DataError
from ..io.atomic import atomic_write_text
from ..io.hashing import file_sha256, params_hash
from ..io.images import load_grayscale
from .angiogram import clean_angiogram
from .config import PreprocessConfig


class CleanAngiogramd(MapTransform):
    """MONAI dictionary transform: path -> cleaned uint8 (1, S, S) array, or an error message."""

    def __init__(self, config: PreprocessConfig) -> None:
        super().__init__(keys=("image",))
        self.config = config

    def __call__(self, item: dict) -> dict:
        path = item["image"]
        try:
            pixels = clean_angiogram(load_grayscale(path), self.config)[None]
            error = ""
        except (DataError, ValueError) as exc:  # ValueError: preprocess.polarity: refuse
            problem = exc.problem if isinstance(exc, DataError) else str(exc)
            pixels, error = np.zeros((1, 0, 0), dtype=np.uint8), problem
        return {"sha256": item["sha256"], "image": pixels, "error": error}


class VerifiedPersistentDataset(PersistentDataset):
    """MONAI's PersistentDataset, but an entry is checked before it is served: one that does not
    load (truncated by a kill, a full disk, junk) or is not what this item's preprocessing makes
    (another file's content, another size) is deleted and rebuilt, never trusted. MONAI itself
    re-raises most such errors, and moves its temporary file across file systems with a copy."""

    def __init__(self, *args, image_size: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.image_size = image_size

    def _valid(self, entry: object, item: dict) -> bool:
        if not isinstance(entry, dict) or entry.get("sha256") != item["sha256"]:
            return False
        if entry.get("error"):
            return True
        image = entry.get("image")
        return (isinstance(image, (torch.Tensor, np.ndarray)) and image.dtype in (torch.uint8,
                np.uint8) and tuple(image.shape) == (1, self.image_size, self.image_size))

    def _cachecheck(self, item_transformed: dict):
        name = self.hash_func(item_transformed).decode("utf-8") + self.transform_hash
        hashfile = Path(self.cache_dir) / f"{name}.pt"
        if hashfile.is_file():
            try:
                entry = torch.load(hashfile, weights_only=True)
            except Exception:  # noqa: BLE001 - any unreadable entry is rebuilt
                entry = None
            if self._valid(entry, item_transformed):
                return entry
            hashfile.unlink(missing_ok=True)
        return super()._cachecheck(item_transformed)


def _content_key(item: dict) -> bytes:
    return f"{item['sha256']}-{item['params']}".encode()


class ImageCache:
    """Preprocessed images keyed by (content hash, preprocessing parameters)."""

    def __init__(self, cache_dir: str | Path, config: PreprocessConfig) -> None:
        self.config = config
        self.params = params_hash(config.cache_params())
        self.root = Path(cache_dir).expanduser()
        self.dir = self.root / "preprocessed" / self.params
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.dir / "params.json", json.dumps(config.cache_params(), indent=1))
        self._hash_index_path = self.root / "content_hashes.json"
        self._hashes = self._read_hash_index()
        self._dirty = False  # only a newly hashed file makes the index worth rewriting

    # -- content hashes, remembered by (path, size, mtime) so a re-run reads no file twice ----
    def _read_hash_index(self) -> dict[str, list]:
        try:
            return json.loads(self._hash_index_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def content_hash(self, path: str | Path) -> str:
        path = Path(path).resolve()
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataError(path, "image file not found") from None
        key = str(path)
        known = self._hashes.get(key)
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            return known[2]
        digest = file_sha256(path)
        self._hashes[key] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def _save_hash_index(self) -> None:
        if self._dirty:
            atomic_write_text(self._hash_index_path, json.dumps(self._hashes))
            self._dirty = False

    # -- the MONAI dataset ----------------------------------------------------------------
    def _items(self, paths: Iterable[str | Path]) -> list[dict]:
        items = [{"image": str(p), "sha256": self.content_hash(p), "params": self.params}
                 for p in paths]
        self._save_hash_index()
        return items

    def dataset(self, paths: Iterable[str | Path]) -> PersistentDataset:
        return VerifiedPersistentDataset(data=self._items(paths),
                                         transform=CleanAngiogramd(self.config),
                                         cache_dir=self.dir, hash_func=_content_key,
                                         image_size=self.config.image_size)

    def warm(self, paths: Iterable[str | Path], workers: int | None = None,
             progress: bool = True) -> dict[str, str]:
        """Preprocess every image not cached yet, in parallel; return {path: error} for failures."""
        paths = [str(p) for p in paths]
        ds = self.dataset(paths)
        workers = (os.cpu_count() or 1) if workers is None else workers
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers,
                                             collate_fn=_identity)
        errors: dict[str, str] = {}
        for path, item in zip(paths, tqdm(loader, total=len(paths), desc="preprocess",
                                         unit="img", disable=not progress)):
            if item["error"]:
                errors[path] = item["error"]
        return errors

    def load(self, path: str | Path) -> np.ndarray:
        """The cleaned (S, S) uint8 image of one file; a one-line error names a bad file."""
        item = self.dataset([path])[0]
        if item["error"]:
            raise DataError(path, item["error"])
        image = item["image"]
        return image.numpy()[0] if isinstance(image, torch.Tensor) else np.asarray(image)[0]


def _identity(item: dict) -> dict:
    return item

