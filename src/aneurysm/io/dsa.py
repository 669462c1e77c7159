"""X-ray angiography runs as hospitals store them: one multi-frame XA DICOM file per run, the
contrast arriving, peaking and washing out over its frames, subtracted or not.

K-ium holds one frame per view; a run holds dozens. ``arterial_frame`` makes the one frame:
the frame of peak arterial contrast (``peak``), or the darkest value of each pixel over the
arterial phase, arrival to peak (``minimum``). An unsubtracted run is subtracted first, with
the mask frames its Mask Subtraction Sequence names (the first frame where it names none).
The view's projection comes from the C-arm's positioner angle; which vessel was injected is
not in the tags, so the importer reads it from a small table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import DataError

FRAME_RULES = ("peak", "minimum")
#: grey level of DSA's empty field after subtraction (K-ium's is 190-215)
FIELD_LEVEL = 205.0


@dataclass(frozen=True)
class Run:
    frames: np.ndarray  # (T, H, W) float32, DSA polarity: contrast dark on a light field
    primary_deg: float  # PositionerPrimaryAngle: + LAO, - RAO; about 0 frontal, 90 lateral
    secondary_deg: float  # PositionerSecondaryAngle: + cranial, - caudal

    @property
    def projection(self) -> str:
        """K-ium's view letter: A (frontal) or B (lateral), from the primary angle."""
        return "A" if abs(self.primary_deg) < 45 else "B"


def read_run(path: str | Path) -> Run:
    """A run's frames, subtracted, in DSA polarity; a one-line error names a bad file."""
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
        frames = ds.pixel_array.astype(np.float32)
    except (InvalidDicomError, AttributeError, ValueError, OSError, EOFError, KeyError,
            RuntimeError, NotImplementedError) as exc:
        raise DataError(path, f"not a readable X-ray angiography run "
                              f"({exc.__class__.__name__})") from None
    if frames.ndim != 3 or len(frames) < 2:
        raise DataError(path, f"a run needs several frames, this file holds shape "
                              f"{frames.shape}")
    if "PositionerPrimaryAngle" not in ds:
        raise DataError(path, "no PositionerPrimaryAngle: frontal or lateral cannot be told")
    masks = ds.get("MaskSubtractionSequence")
    if masks:  # stored unsubtracted, with how to subtract it
        item = masks[0]
        numbers = item.get("MaskFrameNumbers", [1])
        numbers = [int(n) for n in (numbers if isinstance(numbers, (list, tuple,
                                    pydicom.multival.MultiValue)) else [numbers])]
        mask = frames[[n - 1 for n in numbers]].mean(0)
        frames = FIELD_LEVEL + (frames - mask)  # contrast makes a frame darker than its mask
    return Run(np.clip(frames, 0, 255), float(ds.PositionerPrimaryAngle),
               float(ds.get("PositionerSecondaryAngle", 0.0)))


def contrast_curve(frames: np.ndarray) -> np.ndarray:
    """Per frame, how much darker than the field its darkest 1 % of pixels are."""
    flat = frames.reshape(len(frames), -1)
    field = np.median(flat, axis=1)
    return field - np.percentile(flat, 1, axis=1)


def arterial_frame(frames: np.ndarray, rule: str = "peak") -> np.ndarray:
    """(T, H, W) -> the (H, W) frame K-ium's layout holds, by ``rule``."""
    if rule not in FRAME_RULES:
        raise ValueError(f"frame rule must be one of {FRAME_RULES}, got {rule!r}")
    curve = contrast_curve(frames)
    peak = int(np.argmax(curve))
    if rule == "peak":
        return frames[peak]
    arrived = np.nonzero(curve[:peak + 1] >= 0.5 * curve[peak])[0]
    return frames[int(arrived[0]):peak + 1].min(0)
