"""DICOM series and NIfTI reading: slice order, multi-frame, rescale, canonical frame, errors."""

import gzip
import random
import shutil
import struct

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from aneurysm.errors import DataError
from aneurysm.io.dicom_series import load_dicom_series
from aneurysm.io.volumes import load_nifti


def _slice(folder, k, value, pos=None, orientation=(1, 0, 0, 0, 1, 0), slope=2.0,
           series="1.2.3.4", image_type=("ORIGINAL", "PRIMARY", "AXIAL"), size=(4, 5)):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", uid
    ds.SeriesInstanceUID, ds.ImageType = series, list(image_type)
    ds.Rows, ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if pos is not False:
        ds.ImagePositionPatient = pos or [0.0, 0.0, 2.0 * k]
    ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = [1.0, 1.0]
    ds.RescaleSlope, ds.RescaleIntercept = slope, -10.0
    ds.PixelData = np.full(size, value, dtype=np.uint16).tobytes()
    path = folder / f"{uid}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_slices_are_ordered_by_position_not_file_name_and_rescaled(tmp_path):
    ks = list(range(6))
    random.Random(0).shuffle(ks)
    for k in ks:
        _slice(tmp_path, k, value=10 + k)
    vol = load_dicom_series(tmp_path)
    assert vol.data.shape == (5, 4, 6)
    profile = vol.data[0, 0, :]
    assert list(profile) == [2.0 * (10 + k) - 10.0 for k in range(6)]  # slope, intercept
    assert vol.spacing == (1.0, 1.0, 2.0)
    assert np.all(np.diag(vol.affine)[:3] > 0)  # canonical RAS+


def test_an_export_folder_reads_as_its_clean_series_and_names_what_it_set_aside(tmp_path):
    clean, messy = tmp_path / "clean", tmp_path / "messy"
    clean.mkdir(), messy.mkdir()
    for k in range(6):
        first = _slice(clean, k, 10 + k)
        shutil.copy(first, messy / first.name)
    scout = _slice(messy, 0, 99, pos=[0.0, -50.0, 5.0], orientation=(1, 0, 0, 0, 0, -1),
                   image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), size=(8, 8))
    derived = _slice(messy, 2, 77, image_type=("DERIVED", "SECONDARY", "MIP"))
    other = [_slice(messy, k, 55, series="9.9.9") for k in range(3)]
    copied = sorted(clean.iterdir())[3]
    shutil.copy(copied, messy / "resent.dcm")  # the same instance, sent twice
    want, got = load_dicom_series(clean), load_dicom_series(messy)
    assert np.array_equal(got.data, want.data) and np.allclose(got.affine, want.affine)
    assert want.decisions == ()
    reasons = dict(got.decisions)
    assert reasons[scout.name].startswith("localizer")
    assert reasons[derived.name].startswith("derived image")
    assert all(reasons[p.name].startswith("another series") for p in other)
    dup = {name for name, why in got.decisions if why.startswith("duplicate instance")}
    assert dup & {"resent.dcm", copied.name} and len(dup) == 1
    assert len(got.decisions) == 6


def test_uneven_spacing_is_resampled_and_gaps_filled_only_when_asked(tmp_path):
    uneven, gap = tmp_path / "uneven", tmp_path / "gap"
    uneven.mkdir(), gap.mkdir()
    for k, z in enumerate([0.0, 2.0, 4.0, 6.6, 8.6]):
        _slice(uneven, k, int(10 * z), pos=[0.0, 0.0, z], slope=1.0)
    vol = load_dicom_series(uneven)
    assert vol.spacing[2] == pytest.approx(2.0)
    assert np.allclose(vol.data[0, 0, :], [10 * z - 10 for z in (0, 2, 4, 6, 8)], atol=1e-3)
    for k in (0, 1, 3, 4):
        _slice(gap, k, 10 * k, slope=1.0)
    with pytest.raises(DataError, match="missing slice"):
        load_dicom_series(gap)
    filled = load_dicom_series(gap, gaps="fill")
    assert np.allclose(filled.data[0, 0, :], [10 * k - 10 for k in range(5)])
    fine = tmp_path / "fine"
    fine.mkdir()
    for k in range(30):  # a step that rounding would shift: 0.625 mm stays 0.625 mm
        _slice(fine, k, 5, pos=[0.0, 0.0, 0.625 * k])
    assert load_dicom_series(fine).spacing[2] == pytest.approx(0.625, abs=1e-9)


def test_multiframe_file_with_shuffled_frames(tmp_path):
    order = [3, 0, 4, 1, 2]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4.1", uid
    ds.Rows, ds.Columns, ds.NumberOfFrames = 3, 3, 5
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared, o, m = Dataset(), Dataset(), Dataset()
    o.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    m.PixelSpacing = [1.0, 1.0]
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([o]), Sequence([m])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in order:
        p, f = Dataset(), Dataset()
        p.ImagePositionPatient = [0.0, 0.0, 1.5 * k]
        f.PlanePositionSequence = Sequence([p])
        frames.append(f)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.stack([np.full((3, 3), 100 + k, np.uint16) for k in order]).tobytes()
    ds.save_as(tmp_path / "multi.dcm", enforce_file_format=True)
    vol = load_dicom_series(tmp_path)
    assert list(vol.data[1, 1, :]) == [100.0 + k for k in range(5)]
    assert vol.localizer_voxel(uid, 1.0, 1.0, order.index(4))[2] == pytest.approx(4.0)


@pytest.mark.parametrize("fault, message", [
    ("no_position", "missing ImagePositionPatient"),
    ("gap", "missing slice.*set projection.slice_gaps: fill"),
    ("clash", "two different slices at position"),
    ("compressed", "(compressed .*JPEG 2000.* install pylibjpeg|undecodable pixel data)"),
])
def test_broken_series_are_named(tmp_path, fault, message):
    for k in (0, 1, 2, 3):
        if fault == "gap" and k == 2:
            continue
        kw = {}
        if fault == "no_position" and k == 1:
            kw["pos"] = False
        if fault == "orientation" and k == 3:
            kw["orientation"] = (0, 1, 0, 0, 0, -1)
        if fault == "clash" and k == 3:
            kw["pos"] = [0.0, 0.0, 4.0]
        _slice(tmp_path, k, 5 + k, **kw)
    files = sorted(tmp_path.glob("*.dcm"))
    ds = pydicom.dcmread(files[-1])
    if fault == "compressed":  # JPEG 2000, and no decoder installed (none is a dependency)
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    ds.save_as(files[-1], enforce_file_format=True)
    with pytest.raises(DataError, match=message) as err:
        load_dicom_series(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("fault, message", [
    ("truncated", "v.nii.gz: (unreadable|not a readable)"),
    ("four_d", r"expected a 3-D volume, got shape \(4, 5, 6, 2\)"),
    ("nan", "3 voxel\\(s\\) are NaN or infinite"),
    ("zero_affine", "affine is not invertible"),
])
def test_broken_nifti_is_named(tmp_path, fault, message):
    data = np.ones((4, 5, 6, 2) if fault == "four_d" else (4, 5, 6), np.float32)
    if fault == "nan":
        data[0, 0, :3] = np.nan
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    if fault == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    if fault == "zero_affine":  # nibabel will not write one: zero the sform in the header bytes
        raw = bytearray(gzip.decompress(path.read_bytes()))
        raw[252:256] = struct.pack("<hh", 0, 1)  # qform_code 0, sform_code 1
        raw[280:328] = bytes(48)  # srow_x, srow_y, srow_z
        path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=message) as err:
        load_nifti(path)
    assert "\n" not in str(err.value)


def test_nifti_is_reoriented_to_canonical(tmp_path):
    data = np.zeros((4, 5, 6), np.float32)
    data[0, 0, 0] = 1.0  # the voxel at the patient's right-posterior-inferior corner in LPS
    affine = np.diag([-2.0, -2.0, 2.0, 1.0])  # LPS voxel order
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "v.nii.gz")
    vol = load_nifti(tmp_path / "v.nii.gz")
    assert np.all(np.diag(vol.affine)[:3] > 0)
    assert vol.data[3, 4, 0] == 1.0  # flipped in x and y
    (tmp_path / "bad.nii.gz").write_bytes(b"not nifti")
    with pytest.raises(DataError, match="bad.nii.gz"):
        load_nifti(tmp_path / "bad.nii.gz")
    assert pydicom  # the DICOM writer above is pydicom itself


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_scaled_integers_and_a_singleton_fourth_dimension_are_read(tmp_path, suffix):
    stored = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6, 1)
    img = nib.Nifti1Image(stored, np.eye(4))
    img.header.set_slope_inter(0.5, -100.0)
    path = tmp_path / f"v{suffix}"
    nib.save(img, path)
    vol = load_nifti(path)
    assert vol.data.shape == (4, 5, 6) and vol.data.dtype == np.float32
    assert np.allclose(vol.data, stored[..., 0] * 0.5 - 100.0)
    assert vol.decisions == ()


def test_a_qform_and_sform_that_disagree_are_resolved_by_the_sform_and_named(tmp_path):
    data = np.zeros((4, 5, 6), np.float32)
    data[0, 0, 0] = 1.0
    img = nib.Nifti1Image(data, None)
    img.set_qform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)  # scanner frame, 2 mm
    img.set_sform(np.diag([1.0, 1.0, 3.0, 1.0]), code=2)  # registered: another grid
    nib.save(img, tmp_path / "v.nii.gz")
    vol = load_nifti(tmp_path / "v.nii.gz")
    assert vol.spacing == (1.0, 1.0, 3.0)  # the sform's
    (name, decision), = vol.decisions
    assert name == "v.nii.gz" and "used the sform (code 2)" in decision
