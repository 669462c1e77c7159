"""A montage of projected cases from each source, to compare by eye with real DSA."""

from __future__ import annotations

from pathlib import Path

from ..io.images import load_grayscale
from ..schema import StudyRecord
from ..viz import save_montage
from .render import ProjectionConfig
from .stage import project_records, read_positions

_SHOWN = ("MIP-ALL-A", "MIP-ALL-B", "MIP-L-A", "MIP-POST-B")


def save_sources_preview(sources: dict[str, list[StudyRecord]], path: str | Path,
                         cache_dir: str | Path, per_source: int = 1) -> Path:
    """Four views of the first positive case(s) of each source, aneurysms circled."""
    picked = []
    for name, records in sorted(sources.items()):
        positives = [r for r in records if r.volume is not None and r.presence == 1]
        picked += (positives or [r for r in records if r.volume is not None])[:per_source]
    projected = project_records(picked, cache_dir, ProjectionConfig(), skip_bad=True,
                                progress=False).records
    images, titles, marks = [], [], []
    for r in projected:
        positions = read_positions(r)
        for view in _SHOWN:
            images.append(load_grayscale(r.view_path(view)))
            titles.append(f"{r.source} {r.study_id[-10:]} {view}")
            marks.append([(p["x"], p["y"], p["r"]) for p in positions if p["view"] == view])
    return save_montage(images, titles, path, suptitle="projected external cases", marks=marks)
