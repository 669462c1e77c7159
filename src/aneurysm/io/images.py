"""Read angiography images as 2-D uint8 arrays, with errors that name the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import DataError
from .atomic import atomic_write_bytes

# A truncated JPEG must fail loudly, never decode silently into a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: An angiogram is at most a few thousand pixels a side; a file declaring more than this is
#: refused from its header, before anything is allocated (a decompression bomb).
MAX_IMAGE_PIXELS = 64_000_000


def _check_size(path: Path, img: Image.Image) -> None:
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(path, f"refused: declares {width} x {height} px, over {MAX_IMAGE_PIXELS:,} "
                              "px (a decompression bomb or a corrupt header)")


def load_grayscale(path: str | Path) -> np.ndarray:
    """Decode an image fully and return it as an HxW uint8 array (3-channel files are averaged)."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            _check_size(path, img)
            img.load()
            if img.mode in ("L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr"):
                gray = img.convert("L")
            elif img.mode in ("I;16", "I;16B", "I", "F"):
                arr = np.asarray(img, dtype=np.float64)
                lo, hi = float(arr.min()), float(arr.max())
                scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
                return scaled.round().astype(np.uint8)
            else:
                raise DataError(path, f"unsupported image mode {img.mode}")
            return np.asarray(gray, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise DataError(path, "image file not found") from None
    except UnidentifiedImageError:
        raise DataError(path, "not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError:
        raise DataError(path, f"refused: declares over {MAX_IMAGE_PIXELS:,} px (a decompression "
                              "bomb or a corrupt header)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"unreadable image ({exc})") from None


def write_image(path: str | Path, image: Image.Image | np.ndarray, **params) -> Path:
    """Encode in memory, then write atomically through Python's file I/O. PIL's own
    ``save(path)`` writes through its C encoder and ignores a short write: on a full disk it
    leaves a silently truncated image and reports success."""
    path = Path(path)
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **params)
    return atomic_write_bytes(path, buf.getvalue())


def image_channels(path: str | Path) -> int:
    try:
        with Image.open(path) as img:
            _check_size(Path(path), img)
            return len(img.getbands())
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise DataError(path, f"not a readable image ({exc.__class__.__name__})") from None
