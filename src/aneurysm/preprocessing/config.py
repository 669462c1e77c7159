"""Preprocessing settings (the ``preprocess:`` section of a YAML config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

#: Bump when the algorithm changes, so no cache made by older code is ever served.
ALGORITHM_VERSION = 2
POLARITIES = ("auto", "keep", "refuse")


@dataclass(frozen=True)
class PreprocessConfig:
    image_size: int = 128  # CPU-sized default; real data wants 512+ (configs/gpu.yaml)
    remove_border: bool = True
    remove_text: bool = True
    border_dark_level: int = 40  # a band row/column has a median at or below this
    text_bright_level: int = 248  # DSA background is ~190-215; overlay text is near white
    max_band_fraction: float = 0.25  # a border band removes at most this much of its side
    polarity: str = "auto"  # bright vessels on black: "auto" inverts to DSA's, "refuse", "keep"
    #: a second cache at this size, the source of the model's high-resolution second look
    #: (``model.dense.crops``); 0 = none. Not part of the first cache's key.
    fine_size: int = 0

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise ValueError(f"preprocess.polarity must be one of {POLARITIES}, "
                             f"got {self.polarity!r}")
        if not 0.0 <= self.max_band_fraction < 0.5:
            raise ValueError("preprocess.max_band_fraction must be in [0, 0.5)")
        if self.fine_size and self.fine_size < self.image_size:
            raise ValueError(f"preprocess.fine_size {self.fine_size} must be 0 or at least "
                             f"preprocess.image_size {self.image_size}")

    def cache_params(self) -> dict:
        params = asdict(self)
        del params["fine_size"]  # the fine cache is keyed by its own image_size
        return {"algorithm": ALGORITHM_VERSION, **params}

    def fine(self) -> "PreprocessConfig | None":
        """The settings of the second, high-resolution cache; None without one."""
        return replace(self, image_size=self.fine_size, fine_size=0) if self.fine_size else None
