"""Real vendor files from pydicom's test data and the pydicom-data package: every compressed
or re-encoded copy reads, through ``load_dicom_series``, as the same volume as its uncompressed
twin. No file is downloaded; a twin missing from the installed packages fails, not skips."""

import shutil
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian

from aneurysm.io.dicom_series import load_dicom_series

#: uncompressed file -> its copies in other transfer syntaxes (MR and CT, the 3-D modalities)
TWINS = {
    "MR_small.dcm": ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
                     "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm",
                     "MR_small_jpeg_ls_lossless.dcm"],
    "MR2_UNCR.dcm": ["MR2_J2KR.dcm"],  # pydicom-data: a 1024 x 1024 vendor MR slice
    "693_UNCR.dcm": ["693_J2KR.dcm"],  # pydicom-data: a 512 x 512 CT slice
}


def _volume(name, tmp_path):
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name}: not installed (pydicom-data is a test dependency)"
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(path, folder / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom on padded pixel data
        return load_dicom_series(folder), pydicom.dcmread(path).file_meta.TransferSyntaxUID


@pytest.mark.parametrize("reference, twin", [(r, t) for r, ts in TWINS.items() for t in ts])
def test_every_syntax_gives_the_same_volume_as_the_uncompressed_twin(tmp_path, reference, twin):
    want, plain = _volume(reference, tmp_path)
    got, syntax = _volume(twin, tmp_path)
    assert syntax != plain
    assert got.data.shape == want.data.shape and np.array_equal(got.data, want.data)
    assert np.allclose(got.affine, want.affine)


def test_deflate_and_jpeg_lossless_decode(tmp_path):
    want, _ = _volume("MR_small.dcm", tmp_path)
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    folder = tmp_path / "deflated"
    folder.mkdir()
    ds.save_as(folder / "slice.dcm", enforce_file_format=True)
    assert pydicom.dcmread(folder / "slice.dcm").file_meta.TransferSyntaxUID.is_deflated
    assert np.array_equal(load_dicom_series(folder).data, want.data)
    # JPEG lossless, process 14 (pydicom-data has no uncompressed twin): it decodes, in range
    lossless = pydicom.dcmread(get_testdata_file("JPGLosslessP14SV1_1s_1f_8b.dcm",
                                                 download=False))
    pixels = lossless.pixel_array
    assert pixels.shape == (lossless.Rows, lossless.Columns) and pixels.std() > 0
