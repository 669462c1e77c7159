"""Synthetic DSA runs as a hospital archive holds them, made from a synthetic K-ium root.

Each K-ium frame becomes one multi-frame X-ray angiography DICOM run: contrast arrives, peaks
and washes out over the frames (a gamma-variate curve), a blurred venous phase follows the
arterial one, and every frame has quantum noise. Half of the runs are stored unsubtracted, on a
smooth skull-like background, with a Mask Subtraction Sequence naming the first (contrast-free)
frame as the mask; the others are stored subtracted. The C-arm angles say frontal or lateral;
which vessel was injected is written only into ``runs.csv``, as in a real archive, where the
tags cannot say it. The K-ium labels go into ``labels.csv``.

    ROOT/runs/{patient}/{run}.dcm     one run per file
    ROOT/runs.csv                     file, Index, injection (LI, RI, LV, RV)
    ROOT/labels.csv                   K-ium's 23 columns, for the patients with labels
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from ..io.atomic import atomic_write_text
from ..io.images import load_grayscale

XA_IMAGE = "1.2.840.10008.5.1.4.1.1.12.1"  # X-Ray Angiographic Image Storage
RUN_TABLE, LABELS = "runs.csv", "labels.csv"
_FIELD = 205.0


def _curve(t: np.ndarray, peak: float, width: float) -> np.ndarray:
    """A gamma-variate bolus, 1 at ``peak``."""
    x = np.clip(t / peak, 1e-6, None)
    a = peak / width
    return np.where(t > 0, (x * np.exp(1 - x)) ** a, 0.0)


def run_frames(frame: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, H, W) DSA frames whose arterial peak shows ``frame`` (a K-ium view)."""
    t = np.arange(n, dtype=float)
    peak = rng.uniform(0.35, 0.5) * n
    arterial = _curve(t - 1, peak - 1, rng.uniform(1.2, 2.0))
    venous = _curve(t - 1, min(peak + 0.3 * n, n - 1.5), 2.5) * 0.5
    signal = _FIELD - frame.astype(float)
    late = ndimage.gaussian_filter(signal, 3.0)  # the venous phase: blurred, displaced
    late = np.roll(late, (rng.integers(-6, 7), rng.integers(-6, 7)), axis=(0, 1))
    frames = (_FIELD - arterial[:, None, None] * signal - venous[:, None, None] * late
              + rng.normal(0, 2.0, (n, *frame.shape)))
    return np.clip(frames, 0, 255)


def _dataset(frames: np.ndarray, view: str, subtracted: bool, index: int,
             rng: np.random.Generator) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XA_IMAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = XA_IMAGE, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "XA", f"SYNTH{index}"
    ds.SeriesInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    frontal = view.endswith("A")
    ds.PositionerPrimaryAngle = float(rng.uniform(-8, 8) if frontal else
                                      rng.choice([-1, 1]) * rng.uniform(82, 98))
    ds.PositionerSecondaryAngle = float(rng.uniform(-15, 15))
    ds.NumberOfFrames, ds.FrameTime = len(frames), 250.0
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if not subtracted:  # stored as acquired: the skull under the contrast, and how to remove it
        h, w = frames.shape[1:]
        skull = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), max(h, w) / 12)
        skull = 25 * skull / (np.abs(skull).max() + 1e-6) - 20
        frames = np.clip(frames + skull, 0, 255)
        mask = Dataset()
        mask.MaskOperation, mask.MaskFrameNumbers = "AVG_SUB", [1]
        ds.MaskSubtractionSequence = Sequence([mask])
    ds.PixelData = np.rint(frames).astype(np.uint8).tobytes()
    return ds


def write_dsa_runs(kium_root: str | Path, out: str | Path, split: str = "train",
                   frames: int = 12, seed: int = 0) -> Path:
    """Runs for every patient of ``kium_root``'s ``split``; returns ``out``."""
    kium_root, out = Path(kium_root), Path(out)
    folder, table = {"train": ("train_set", "train.csv"), "test": ("test_set", "test.csv")}[split]
    labels = pd.read_csv(kium_root / folder / table)
    rng = np.random.default_rng(seed)
    rows = []
    for index in labels["Index"]:
        patient = out / "runs" / f"patient{index}"
        patient.mkdir(parents=True, exist_ok=True)
        for image in sorted((kium_root / folder).glob(f"{index}*-?.jpg")):
            view = image.stem[len(str(index)):]
            run = run_frames(load_grayscale(image), frames, rng)
            name = f"run{len(rows) + 1:03d}.dcm"
            _dataset(run, view, bool(rng.random() < 0.5), int(index), rng).save_as(
                patient / name, enforce_file_format=True)
            rows.append({"file": f"runs/patient{index}/{name}", "Index": int(index),
                         "injection": view.split("-")[0]})
    atomic_write_text(out / RUN_TABLE, pd.DataFrame(rows).to_csv(index=False))
    if split == "train":
        atomic_write_text(out / LABELS, labels.to_csv(index=False))
    return out

