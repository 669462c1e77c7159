"""Pictures a person would rather look at than read: montages of views."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io.atomic import atomic_path  # noqa: E402


def save_montage(images: Sequence[np.ndarray | None], titles: Sequence[str], path: str | Path,
                 suptitle: str = "", marks: Sequence[Sequence[tuple[float, float, float]]] = (),
                 columns: int = 4) -> Path:
    """A grid of grayscale images; ``marks`` draws circles (x, y, r) on each, e.g. aneurysms."""
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= len(images):
            continue
        if images[k] is None:
            ax.text(0.5, 0.5, "absent", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(images[k], cmap="gray", vmin=0, vmax=255)
            for x, y, r in (marks[k] if k < len(marks) else ()):
                ax.add_patch(plt.Circle((x, y), max(r * 2.0, 6.0), fill=False, color="red", lw=1))
        ax.set_title(titles[k], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=75)
    plt.close(fig)
    return path
