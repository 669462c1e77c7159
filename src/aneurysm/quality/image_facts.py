"""Per-image facts the doctor needs: readable?, size, channels, hashes, overlays."""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image

from ..errors import DataError
from ..io.hashing import file_sha256
from ..io.images import image_channels, load_grayscale
from ..preprocessing.angiogram import (
    PreprocessConfig,
    border_bands,
    cap_bands,
    dsa_polarity,
    overlay_text_mask,
)

_PHASH_SIZE = 16  # 256-bit hash: different patients' similar views stay apart


@dataclass(frozen=True)
class ImageFacts:
    path: str
    error: str = ""
    width: int = 0
    height: int = 0
    channels: int = 0
    sha256: str = ""
    phash: bytes = b""
    border: tuple[int, int, int, int] = (0, 0, 0, 0)  # dark bands as detected
    text_pixels: int = 0
    inverted: bool = False  # bright vessels on a dark field
    removed: float = 0.0  # fraction of the image the detected bands would remove
    capped: bool = False  # the bands exceed preprocessing's bound: it removes less
    blank: bool = False  # one grey level throughout: no anatomy at all


def examine_image(path: str) -> ImageFacts:
    """Decode one file fully; never raises for a bad file, it reports it instead."""
    defaults = PreprocessConfig()
    try:
        sha = file_sha256(path)
        gray = load_grayscale(path)
        channels = image_channels(path)
    except DataError as exc:
        return ImageFacts(path, error=exc.problem)
    except OSError as exc:
        return ImageFacts(path, error=f"unreadable ({exc})")
    blank = int(gray.max()) - int(gray.min()) < 8
    upright = dsa_polarity(gray, defaults)  # as preprocessing sees it
    inverted = upright is not gray  # dsa_polarity returns its input unless it inverted it
    bands = border_bands(upright, defaults.border_dark_level)
    top, bottom, left, right = kept = cap_bands(bands, upright.shape, defaults)
    h, w = gray.shape
    removed = 1.0 - (h - bands[0] - bands[1]) * (w - bands[2] - bands[3]) / (h * w)
    inner = upright[top:h - bottom, left:w - right]
    text = int(overlay_text_mask(inner, defaults.text_bright_level).sum())
    ph = imagehash.phash(Image.fromarray(gray), hash_size=_PHASH_SIZE).hash
    return ImageFacts(path, "", w, h, channels, sha, np.packbits(ph.ravel()).tobytes(), bands,
                      text, inverted and not blank, removed, kept != bands, blank)


def near_duplicate_pairs(facts: list[ImageFacts], max_distance: int) -> list[tuple[int, int, int]]:
    """Index pairs whose perceptual hashes differ in at most ``max_distance`` bits."""
    usable = [i for i, f in enumerate(facts) if f.phash]
    if len(usable) < 2:
        return []
    bits = np.unpackbits(np.frombuffer(b"".join(facts[i].phash for i in usable), dtype=np.uint8)
                         .reshape(len(usable), -1), axis=1).astype(np.float32)
    signs = 2.0 * bits - 1.0
    n_bits = bits.shape[1]
    pairs = []
    chunk = 2048
    for start in range(0, len(usable), chunk):
        dots = signs[start:start + chunk] @ signs.T  # agreement - disagreement
        dist = (n_bits - dots) / 2.0
        rows, cols = np.nonzero(dist <= max_distance)
        for r, c in zip(rows, cols):
            i, j = start + int(r), int(c)
            if i < j:
                pairs.append((usable[i], usable[j], int(round(dist[r, c]))))
    return pairs
