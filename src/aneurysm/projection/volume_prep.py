"""A canonical volume made ready to project: isotropic, vessel-bright, and a soft occupancy of
the contrast-filled lumen with stationary tissue suppressed (DSA is subtracted: tissue vanishes)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def resample_isotropic(data: np.ndarray, spacing: tuple[float, float, float], target: float,
                       order: int = 1) -> np.ndarray:
    factors = [s / target for s in spacing]
    if np.allclose(factors, 1.0, atol=1e-3):
        return data
    return ndimage.zoom(data, factors, order=order)


def vessel_bright(data: np.ndarray, modality: str, cta_window: tuple[float, float],
                  cta_bone_level: float) -> np.ndarray:
    """Intensities in [0, 1] where contrast-filled vessels are bright and the rest dark."""
    m = modality.upper()
    if m.startswith("CT"):
        bone = ndimage.binary_dilation(data > cta_bone_level, iterations=3)
        hu = np.where(bone, 0.0, data)
        low, high = cta_window
        return np.clip((hu - low) / (high - low), 0.0, 1.0).astype(np.float32)
    if "T2" in m:  # flowing blood is dark on T2: invert within the head
        head = data > np.percentile(data, 20)
        lo, hi = np.percentile(data[head], [1, 99]) if head.any() else (0.0, 1.0)
        out = np.clip((hi - data) / max(hi - lo, 1e-6), 0.0, 1.0)
        return np.where(head, out, 0.0).astype(np.float32)
    # TOF-MRA, T1post, 3DRA: bright already. Vessels fill a few percent of a head volume, so the
    # 97th percentile sits on stationary tissue: below it is background.
    lo, hi = np.percentile(data, [97, 99.95])
    return np.clip((data - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


def occupancy(bright: np.ndarray, floor: float = 0.15) -> np.ndarray:
    """Soft lumen occupancy in [0, 1]: 1 inside a well-filled vessel, 0 in tissue.

    Vessel-bright volumes differ in level by modality (a CTA window leaves vessels at half
    brightness, a TOF at full), so the level is the volume's own: the upper quartile of what
    stands above the tissue floor.
    """
    above = bright[bright > floor]
    if not above.size:
        return np.zeros_like(bright)
    level = max(float(np.percentile(above, 75)), floor + 1e-3)
    return np.clip((bright - floor) / (level - floor), 0.0, 1.0).astype(np.float32)
