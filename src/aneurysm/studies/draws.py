"""Seeded synthetic data per seed: the external sources and, for fine-tuning studies, K-ium.

Arms are paired within a seed, so every arm of a seed must see the same draw. A seed folder
remembers what it was drawn with and refuses other sizes (one line) rather than pair arms
trained on different data; a later call with the same sizes reuses it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write_text
from .spec import StudyError

#: the external draw of seed S is seeded S + 1000, so it is not K-ium's draw of seed S (as the
#: harnesses before this package drew it, so their runs stay comparable)
EXTERNAL_SEED_OFFSET = 1000
KIUM = "kium"


@dataclass(frozen=True)
class SeedData:
    root: Path  # the data root: one folder per external source, and kium/ if drawn
    seed: int

    @property
    def kium(self) -> Path:
        return self.root / KIUM


def draw_external(root: Path, sizes: dict[str, Any], seed: int, progress: bool = False
                  ) -> SeedData:
    """The external sources of ``seed`` under ``root``, drawn once."""
    from ..synth.external import ExternalSynthConfig, write_external

    config = ExternalSynthConfig(**{**sizes, "seed": seed + EXTERNAL_SEED_OFFSET})
    if _to_draw(root / ".external.json", config):
        write_external(root, config, force=True, progress=progress)
        _mark(root / ".external.json", config)
    return SeedData(root, seed)


def draw_kium(root: Path, sizes: dict[str, int], seed: int, progress: bool = False) -> SeedData:
    """Synthetic K-ium of ``seed`` (training and held-out test patients) under ``root/kium``."""
    from ..synth.kium import SynthConfig, write_kium

    config = SynthConfig(seed=seed, **sizes)
    if _to_draw(root / ".kium.json", config):
        write_kium(root / KIUM, config, force=True, progress=progress)
        _mark(root / ".kium.json", config)
    return SeedData(root, seed)


def _to_draw(marker: Path, config: Any) -> bool:
    """Whether the draw is still to be made; an existing draw of other sizes is refused."""
    wanted = _text(config)
    if not marker.is_file():
        return True
    before = marker.read_text()
    if before != wanted:
        raise StudyError(f"{marker.parent}: drawn with {before}, not {wanted}; use another --out")
    return False


def _mark(marker: Path, config: Any) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, _text(config))


def _text(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)
