"""What the second look read, to look at: for held-out views that show a sac, the K crops the
map chose at the fine views' resolution, each with its probability, the crop on the sac boxed.
The numbers of ``crop_hits`` say whether the crops score the sac; the sheet shows why: a patch
network that cannot see a small sac, or one that marks down a plain one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from ..io.images import write_image
from .sac_views import covers, views_with_sacs

_TILE, _GAP, _TEXT = 96, 6, 16  # px: a crop as drawn, the space between, its caption


def draw_crop_sheet(arrays, maps, positions: pd.DataFrame,
                    sizes: dict[tuple[int, str], tuple[int, int]],
                    ids: list[int], path: str | Path, rows: int = 8) -> int:
    """Write the sheet of the first ``rows`` views with a sac to ``path`` (PNG); returns the
    rows drawn. ``positions``: the truth's sacs in frame pixels (``Index``, ``view``, ``x``,
    ``y``); ``sizes``: each (index, view name)'s frame (width, height)."""
    k = maps.crops.shape[2]
    tiles = []
    for i, j, sacs in views_with_sacs(arrays, positions, sizes, ids):
        if len(tiles) >= rows:
            break
        view = arrays.fine_view(i)[j] if arrays.fine is not None else arrays.images[i, j]
        half = max(int(round(maps.crop_field * view.shape[-1] / 2)), 1)
        padded = np.pad(view, half, mode="edge")
        crops = maps.crops[i, j]
        hits = np.any([covers(crops, sac, maps.crop_field) for sac in sacs], axis=0)
        row = []
        for (x, y, p), on_sac in zip(crops, hits):
            cx, cy = int(x * view.shape[-1]), int(y * view.shape[-2])
            row.append((padded[cy:cy + 2 * half, cx:cx + 2 * half], float(p), bool(on_sac)))
        tiles.append(row)
    sheet = Image.new("L", (k * (_TILE + _GAP) + _GAP,
                            max(len(tiles), 1) * (_TILE + _GAP + _TEXT) + _GAP), 255)
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(tiles):
        for c, (crop, p, on_sac) in enumerate(row):
            x0, y0 = _GAP + c * (_TILE + _GAP), _GAP + r * (_TILE + _GAP + _TEXT)
            sheet.paste(Image.fromarray(np.ascontiguousarray(crop)).resize(
                (_TILE, _TILE), Image.Resampling.BILINEAR), (x0, y0))
            if on_sac:
                draw.rectangle([x0 - 3, y0 - 3, x0 + _TILE + 2, y0 + _TILE + 2], outline=0,
                               width=3)
            draw.text((x0 + 2, y0 + _TILE + 2), f"p = {p:.3f}" + ("  sac" if on_sac else ""),
                      fill=0)
    write_image(path, sheet)
    return len(tiles)
