"""A montage to judge the domain gap by eye: a K-ium patient's eight views on top, then one
projected case per external source in the same eight views at the same size, footprints
outlined."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ..io.atomic import atomic_savefig  # noqa: E402
from ..io.images import load_grayscale  # noqa: E402
from ..schema import KIUM_VIEW_NAMES, StudyRecord  # noqa: E402
from .config import ProjectionConfig  # noqa: E402
from .stage import footprint_path, project_records  # noqa: E402

_TILE = 160


def _tile(path: str | None) -> np.ndarray | None:
    if not path:
        return None
    return np.asarray(Image.fromarray(load_grayscale(path)).resize((_TILE, _TILE)))


def _outline(path: str | None) -> np.ndarray | None:
    fp = footprint_path(path) if path else None
    if fp is None or not fp.is_file():
        return None
    cells = np.asarray(Image.fromarray(load_grayscale(fp)).resize((_TILE, _TILE),
                                                                  Image.Resampling.NEAREST))
    return cells >= 192 if (cells >= 192).any() else None


def save_sources_preview(sources: dict[str, list[StudyRecord]], path: str | Path,
                         cache_dir: str | Path, config: ProjectionConfig,
                         per_source: int = 1) -> Path:
    """The first positive case(s) of each source, K-ium's (a record with views) first."""
    rows: list[tuple[str, StudyRecord]] = []
    for name, records in sorted(sources.items(), key=lambda kv: kv[0] != "kium"):
        positives = [r for r in records if r.presence == 1] or records
        picked = positives[:per_source]
        # records that still need their views drawn (a run's manifest already holds them)
        volumes = [r for r in picked if r.volume is not None and not any(v.path for v in r.views)]
        if volumes:
            drawn = project_records(volumes, cache_dir, config, skip_bad=True,
                                    progress=False).records
            picked = [r for r in picked if all(r is not v for v in volumes)] + drawn
        rows += [(name, r) for r in picked]
    fig, axes = plt.subplots(len(rows), 8, figsize=(16, 2.3 * len(rows)), squeeze=False)
    for i, (name, record) in enumerate(rows):
        paths = {v.view: v.path for v in record.views}
        for j, view in enumerate(KIUM_VIEW_NAMES):
            ax = axes[i, j]
            ax.axis("off")
            image = _tile(paths.get(view))
            ax.set_title(f"{name} {view}" if j == 0 else view, fontsize=8)
            if image is None:
                ax.text(0.5, 0.5, "absent", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            outline = _outline(paths.get(view))
            if outline is not None:
                ax.contour(outline, levels=[0.5], colors="red", linewidths=0.8)
    fig.suptitle("K-ium views (top) and projected external cases in the same views; "
                 "red: aneurysm footprints" if "kium" in sources else
                 "Projected external cases in the eight K-ium views; red: aneurysm footprints",
                 fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=70)
    plt.close(fig)
    return Path(path)
