"""Turn a raw angiogram into the square uint8 frame the model sees.

Scanner overlays (black bands with burned-in text) carry no anatomy and differ between sites, so a
model could learn the site instead of the vessels: they are removed before anything else.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from .config import PreprocessConfig


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


def is_inverted(image: np.ndarray) -> bool:
    """Bright vessels on a dark field, as some exports and processed frames are. DSA's field
    is light grey (190-215) with dark vessels; the central half of the frame is the field of
    view whatever the border bands, so its median tells the polarity."""
    h, w = image.shape
    centre = image[h // 4:h - h // 4, w // 4:w - w // 4]
    return float(np.median(centre)) < 100.0


def dsa_polarity(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """The image in DSA polarity: inverted if it is bright-on-dark (``polarity: auto``);
    ``refuse`` raises ValueError instead, ``keep`` leaves it."""
    if config.polarity == "keep" or not is_inverted(image):
        return image
    if config.polarity == "refuse":
        raise ValueError("inverted polarity (bright vessels on a dark field); set "
                         "preprocess.polarity: auto to invert it")
    return 255 - image


def cap_bands(bands: tuple[int, int, int, int], shape: tuple[int, ...],
              config: PreprocessConfig) -> tuple[int, int, int, int]:
    """Detected bands, each cut to ``max_band_fraction`` of its side, so no detector error can
    reduce an image to a strip."""
    top, bottom, left, right = bands
    cap_h, cap_w = (int(config.max_band_fraction * side) for side in shape[:2])
    return min(top, cap_h), min(bottom, cap_h), min(left, cap_w), min(right, cap_w)


def kept_bands(image: np.ndarray, config: PreprocessConfig) -> tuple[int, int, int, int]:
    """The border bands preprocessing removes, bounded."""
    if not config.remove_border:
        return (0, 0, 0, 0)
    return cap_bands(border_bands(image, config.border_dark_level), image.shape, config)


def _crop(image: np.ndarray, config: PreprocessConfig) -> tuple[slice, slice]:
    """The part of ``image`` preprocessing keeps: everything but the (bounded) border bands."""
    top, bottom, left, right = kept_bands(image, config)
    return slice(top, image.shape[0] - bottom), slice(left, image.shape[1] - right)


def _pad_square(image: np.ndarray, fill: int) -> np.ndarray:
    """Centre ``image`` on a square canvas of ``fill``; the footprint follows the same geometry."""
    h, w = image.shape
    side = max(h, w)
    if h == w:
        return image
    padded = np.full((side, side), fill, dtype=image.dtype)
    y0, x0 = (side - h) // 2, (side - w) // 2
    padded[y0:y0 + h, x0:x0 + w] = image
    return padded


def clean_angiogram(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """DSA polarity, crop border bands, erase overlay text, pad to square with background,
    resize; uint8 out."""
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    image = dsa_polarity(image, config)
    out = image[_crop(image, config)]
    background = int(np.median(out))
    if config.remove_text:
        mask = overlay_text_mask(out, config.text_bright_level)
        if mask.any():
            out = out.copy()
            out[mask] = background
    out = _pad_square(out, background)
    if out.shape[0] != config.image_size:
        resized = Image.fromarray(np.ascontiguousarray(out)).resize(
            (config.image_size, config.image_size), Image.Resampling.LANCZOS)
        out = np.array(resized)
    return np.ascontiguousarray(out, dtype=np.uint8)


#: Footprint cell values on the model's map grid.
CELL_BACKGROUND, CELL_UNKNOWN, CELL_ANEURYSM = 0, 128, 255
#: An artery cell of a view whose source labels no arteries (known cells: 0 none, k artery k).
ARTERY_UNKNOWN = 255


def footprint_cells(footprint: np.ndarray, image: np.ndarray, config: PreprocessConfig,
                    grid: int) -> np.ndarray:
    """A view's footprint (0 background, 128 unknown, 255 aneurysm pixels) on a ``grid`` x
    ``grid`` map of the preprocessed view: the image's crop and square padding, then a cell is
    aneurysm if any aneurysm pixel falls in it. Cells touching an aneurysm cell are unknown, so a
    map pointing one cell off is not punished."""
    if footprint.shape != image.shape:
        raise ValueError(f"footprint {footprint.shape} and image {image.shape} differ in size")
    fp = _pad_square(footprint[_crop(dsa_polarity(image, config), config)], CELL_BACKGROUND)
    lesion = _per_cell((fp >= 192).astype(np.uint8), grid, np.maximum).astype(bool)
    unknown = _per_cell(((fp >= 64) & (fp < 192)).astype(np.uint8), grid, np.maximum).astype(bool)
    unknown |= ndimage.binary_dilation(lesion, structure=np.ones((3, 3), bool))
    out = np.full((grid, grid), CELL_BACKGROUND, dtype=np.uint8)
    out[unknown] = CELL_UNKNOWN
    out[lesion] = CELL_ANEURYSM
    return out


def _per_cell(values: np.ndarray, grid: int, ufunc: np.ufunc) -> np.ndarray:
    """Reduce a square image to ``grid`` x ``grid`` cells with ``ufunc`` (maximum, add)."""
    edges = np.linspace(0, values.shape[0], grid + 1).round().astype(int)[:-1]
    return ufunc.reduceat(ufunc.reduceat(values, edges, axis=0), edges, axis=1)


def artery_cells(arteries: np.ndarray, image: np.ndarray, config: PreprocessConfig,
                 grid: int) -> np.ndarray:
    """A view's artery map (0 none, k the k-th artery) on the map grid, with the image's crop and
    padding: each cell takes the artery that covers most of its pixels, 0 where none does."""
    if arteries.shape != image.shape:
        raise ValueError(f"artery map {arteries.shape} and image {image.shape} differ in size")
    labels = _pad_square(arteries[_crop(dsa_polarity(image, config), config)], 0)
    present = [int(k) for k in np.unique(labels) if k]
    out = np.zeros((grid, grid), dtype=np.uint8)
    if not present:
        return out
    counts = np.stack([_per_cell((labels == k).astype(np.int32), grid, np.add) for k in present])
    best = np.array(present, dtype=np.uint8)[counts.argmax(0)]
    return np.where(counts.max(0) > 0, best, 0).astype(np.uint8)
