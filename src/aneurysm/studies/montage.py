"""The hardest validation views of a pretraining run, each above its map: what the model
misses and what it mistakes for an aneurysm, to look at rather than read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .runs import LoadedRun
from .spec import NEGATIVE_SOURCES


def hardest_views(r: LoadedRun, path: Path, per_row: int = 6) -> Path:
    """Views showing an aneurysm that the model scores lowest (footprint circled) and
    aneurysm-free ones it scores highest, each above its map; x marks the map's peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io.atomic import atomic_savefig
    from ..preprocessing import CELL_ANEURYSM

    a, maps, logits = r.arrays, r.maps, r.view_logits
    val = r.val & np.isin(r.source, NEGATIVE_SOURCES)
    shows = (a.footprints == CELL_ANEURYSM).any((-1, -2)) & a.view_mask & val[:, None]
    free = (a.presence < 0.5)[:, None] & a.view_mask & val[:, None]
    rows = [("aneurysm, scored lowest", sorted(zip(*np.nonzero(shows)),
                                               key=lambda ij: logits[ij])[:per_row]),
            ("aneurysm-free, scored highest", sorted(zip(*np.nonzero(free)),
                                                     key=lambda ij: -logits[ij])[:per_row])]
    stride = a.images.shape[-1] / maps.shape[-1]
    fig, axes = plt.subplots(4, per_row, figsize=(2.2 * per_row, 9), squeeze=False)
    for k, (_, views) in enumerate(rows):
        for c in range(per_row):
            top, bottom = axes[2 * k, c], axes[2 * k + 1, c]
            top.axis("off")
            bottom.axis("off")
            if c >= len(views):
                continue
            i, j = views[c]
            top.imshow(a.images[i, j], cmap="gray")
            cells = np.argwhere(a.footprints[i, j] == CELL_ANEURYSM)
            if len(cells):
                top.scatter((cells[:, 1] + 0.5) * stride, (cells[:, 0] + 0.5) * stride, s=60,
                            facecolors="none", edgecolors="red")
            row, col = np.unravel_index(maps[i, j].argmax(), maps[i, j].shape)
            top.scatter([(col + 0.5) * stride], [(row + 0.5) * stride], marker="x", c="cyan")
            top.set_title(f"{a.study_ids[i][:18]} view {j}\nlogit {logits[i, j]:.1f}",
                          fontsize=7)
            bottom.imshow(maps[i, j], cmap="magma")
    fig.tight_layout(h_pad=2.5, rect=(0, 0, 1, 0.96))
    for k, (title, _) in enumerate(rows):
        fig.text(0.01, axes[2 * k, 0].get_position().y1 + 0.045, title, fontsize=11,
                 weight="bold")
    atomic_savefig(fig, path, dpi=80)
    plt.close(fig)
    return Path(path)
