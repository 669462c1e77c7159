"""Turn a raw angiogram into the square uint8 frame the model sees.

Scanner overlays (black bands with burned-in text) carry no anatomy and differ between sites, so a
model could learn the site instead of the vessels: they are removed before anything else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

#: Bump when the algorithm changes, so no cache made by older code is ever served.
ALGORITHM_VERSION = 1


@dataclass(frozen=True)
class PreprocessConfig:
    image_size: int = 128  # CPU-sized default; real data wants 512+ (configs/gpu.yaml)
    remove_border: bool = True
    remove_text: bool = True
    border_dark_level: int = 40  # a band row/column has a median at or below this
    text_bright_level: int = 248  # DSA background is ~190-215; overlay text is near white

    def cache_params(self) -> dict:
        return {"algorithm": ALGORITHM_VERSION, **asdict(self)}


def border_bands(image: np.ndarray, dark_level: int = 40) -> tuple[int, int, int, int]:
    """Thickness of dark bands at the (top, bottom, left, right) edges, in pixels.

    A row or column belongs to a band when its median is dark: sparse text inside the band does
    not lift the median, while a vessel crossing a DSA row never makes it dark.
    """
    rows = np.median(image, axis=1) <= dark_level
    cols = np.median(image, axis=0) <= dark_level

    def run(flags: np.ndarray) -> int:
        n = 0
        for flag in flags:
            if not flag:
                break
            n += 1
        return n

    top, bottom = run(rows), run(rows[::-1])
    left, right = run(cols), run(cols[::-1])
    if top + bottom >= image.shape[0] or left + right >= image.shape[1]:
        return (0, 0, 0, 0)  # a wholly dark image has no "band": leave it to the doctor
    return top, bottom, left, right


def overlay_text_mask(image: np.ndarray, bright_level: int = 248) -> np.ndarray:
    """Pixels of burned-in overlay text: near-white strokes, slightly dilated to cover halos."""
    mask = image >= bright_level
    if not mask.any():
        return mask
    return ndimage.binary_dilation(mask, iterations=1)


def clean_angiogram(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Crop border bands, erase overlay text, pad to square with background, resize; uint8 out."""
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    out = image
    if config.remove_border:
        top, bottom, left, right = border_bands(out, config.border_dark_level)
        out = out[top:out.shape[0] - bottom, left:out.shape[1] - right]
    background = int(np.median(out))
    if config.remove_text:
        mask = overlay_text_mask(out, config.text_bright_level)
        if mask.any():
            out = out.copy()
            out[mask] = background
    h, w = out.shape
    side = max(h, w)
    if h != w:
        padded = np.full((side, side), background, dtype=np.uint8)
        y0, x0 = (side - h) // 2, (side - w) // 2
        padded[y0:y0 + h, x0:x0 + w] = out
        out = padded
    if side != config.image_size:
        resized = Image.fromarray(np.ascontiguousarray(out)).resize(
            (config.image_size, config.image_size), Image.Resampling.LANCZOS)
        out = np.array(resized)
    return np.ascontiguousarray(out, dtype=np.uint8)
