"""Write a synthetic volume as a DICOM series the way RSNA 2025 ships it.

Axial slices in the DICOM patient frame (LPS), one file per slice named by SOPInstanceUID, or,
for some series, one multi-frame file holding every slice with per-frame positions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .volume import SynthVolume

_CT = "1.2.840.10008.5.1.4.1.1.2"
_MR = "1.2.840.10008.5.1.4.1.1.4"
_ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
_PREFIX = "1.2.826.0.1.3680043.8.498."
FAKE_PATIENT_ID, FAKE_PATIENT_NAME, FAKE_BIRTH_DATE = "FAKEPID", "Synthetic^Fake", "19230417"


def _uid(rng: np.random.Generator) -> str:
    return generate_uid(prefix=_PREFIX, entropy_srcs=[str(rng.integers(0, 2**62))])


def _base(sop_class: str, sop_uid: str, series_uid: str, study_uid: str, modality: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.SeriesInstanceUID, ds.StudyInstanceUID = series_uid, study_uid
    ds.Modality = "CT" if modality == "CTA" else "MR"
    # Fake identifiers, as a real export carries real ones: no artefact of ours may hold them.
    ds.PatientID = f"{FAKE_PATIENT_ID}{series_uid[-6:]}"
    ds.PatientName = f"{FAKE_PATIENT_NAME}{series_uid[-4:]}"
    ds.PatientBirthDate = FAKE_BIRTH_DATE
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    return ds


def write_series(root: Path, vol: SynthVolume, modality: str, number: int,
                 rng: np.random.Generator) -> dict:
    """Write the series under ``root/{SeriesInstanceUID}/``; return its UID and localizers."""
    series_uid, study_uid = _uid(rng), _uid(rng)
    folder = root / series_uid
    folder.mkdir(parents=True, exist_ok=True)
    sp = vol.spacing
    nx, ny, nz = vol.image.shape
    ox, oy, oz = vol.affine[:3, 3]
    # RAS voxel (i, j, k) -> LPS pixel (row r, column c): c = nx-1-i, r = ny-1-j
    x0, y0 = -(ox + (nx - 1) * sp), -(oy + (ny - 1) * sp)
    slope, intercept = (1.0, -1024.0) if modality == "CTA" else (0.5, 0.0)
    stored = np.clip(np.rint((vol.image - intercept) / slope), 0, 65535).astype(np.uint16)
    slices = [stored[::-1, ::-1, k].T.copy() for k in range(nz)]
    positions = [[float(x0), float(y0), float(oz + k * sp)] for k in range(nz)]
    multiframe = rng.random() < 0.2
    sop_for_slice: list[tuple[str, int]] = []
    if multiframe:
        sop = _uid(rng)
        ds = _base(_ENHANCED_MR, sop, series_uid, study_uid, modality)
        ds.Rows, ds.Columns = slices[0].shape
        ds.NumberOfFrames = nz
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        shared = Dataset()
        orient, measures = Dataset(), Dataset()
        orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        measures.PixelSpacing = [sp, sp]
        measures.SliceThickness = sp
        shared.PlaneOrientationSequence = Sequence([orient])
        shared.PixelMeasuresSequence = Sequence([measures])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        frames = []
        for pos in positions:
            plane, frame = Dataset(), Dataset()
            plane.ImagePositionPatient = pos
            frame.PlanePositionSequence = Sequence([plane])
            frames.append(frame)
        ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
        ds.PixelData = np.stack(slices).tobytes()
        ds.save_as(folder / f"{sop}.dcm", enforce_file_format=True)
        sop_for_slice = [(sop, k) for k in range(nz)]
    else:
        for k, (pixels, pos) in enumerate(zip(slices, positions)):
            sop = _uid(rng)
            ds = _base(_CT if modality == "CTA" else _MR, sop, series_uid, study_uid, modality)
            ds.Rows, ds.Columns = pixels.shape
            ds.ImagePositionPatient = pos
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing = [sp, sp]
            ds.SliceThickness = sp
            ds.InstanceNumber = int(rng.integers(1, 10_000))  # unordered, as in the wild
            ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
            ds.PixelData = pixels.tobytes()
            ds.save_as(folder / f"{sop}.dcm", enforce_file_format=True)
            sop_for_slice.append((sop, -1))
    localizers = []
    for k in range(1, int(vol.lesions.max()) + 1):
        voxels = np.argwhere(vol.lesions == k)
        if not len(voxels):
            continue
        i, j, s = voxels.mean(axis=0)
        sop, frame = sop_for_slice[int(round(s))]
        localizers.append((sop, float(nx - 1 - i), float(ny - 1 - j),
                           int(round(s)) if frame >= 0 else -1, k))
    return {"series_uid": series_uid, "localizers": localizers, "multiframe": multiframe}
