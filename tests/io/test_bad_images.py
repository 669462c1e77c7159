"""Bad images, written as real files: each gives one clear line or a counted report, never a
traceback, and preprocessing never reduces an image to nothing."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aneurysm.errors import DataError
from aneurysm.io.images import load_grayscale
from aneurysm.preprocessing import PreprocessConfig, clean_angiogram
from aneurysm.preprocessing.angiogram import kept_bands


def _bomb_jpeg(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) declares ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _view(kium_root) -> np.ndarray:
    return np.asarray(Image.open(kium_root / "train_set" / "1001LI-A.jpg").convert("L"))


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    path = tmp_path / "1001LI-A.jpg"
    path.write_bytes(_bomb_jpeg(30000, 30000))
    with pytest.raises(DataError, match="1001LI-A.jpg: refused: .*decompression bomb"):
        load_grayscale(path)
    path.write_bytes(_bomb_jpeg(9000, 8000))  # under PIL's own limit, over ours
    with pytest.raises(DataError, match="declares 9000 x 8000 px.*decompression bomb"):
        load_grayscale(path)


@pytest.mark.slow
def test_the_doctor_reports_a_bomb_and_does_not_crash(kium_root):
    (kium_root / "train_set" / "1001LI-A.jpg").write_bytes(_bomb_jpeg(30000, 30000))
    proc = subprocess.run([sys.executable, "-m", "aneurysm", "check", "--root", str(kium_root),
                           "--workers", "2", "--show", "50"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    assert "1001LI-A.jpg" in proc.stdout and "decompression bomb" in proc.stdout


def test_inverted_polarity_is_brought_to_dsa_polarity(kium_root):
    """Bright vessels on black, as some exports are: once the band detector cropped such an
    image to a 9 px strip. Now it is inverted first, and the result matches the DSA original."""
    view = _view(kium_root)
    config = PreprocessConfig(image_size=64)
    upright = clean_angiogram(view, config).astype(float)
    inverted = clean_angiogram(255 - view, config).astype(float)
    assert np.corrcoef(upright.ravel(), inverted.ravel())[0, 1] > 0.99
    with pytest.raises(ValueError, match="inverted polarity"):
        clean_angiogram(255 - view, PreprocessConfig(image_size=64, polarity="refuse"))


def test_border_bands_are_bounded(kium_root):
    view = _view(kium_root).copy()
    h, w = view.shape
    view[: int(0.4 * h)] = 3  # a "band" over much of the frame
    config = PreprocessConfig(image_size=64)
    top, bottom, left, right = kept_bands(view, config)
    assert top == int(0.25 * h) and bottom == left == right == 0
    out = clean_angiogram(view, config)
    assert out.shape == (64, 64) and out.std() > 5  # anatomy is left, not a strip of black


@pytest.mark.slow
def test_the_doctor_flags_inverted_images_and_bands_over_the_bound(kium_root):
    folder = kium_root / "train_set"
    view = _view(kium_root)
    Image.fromarray(255 - view).save(folder / "1001LI-A.jpg", quality=95)
    banded = np.asarray(Image.open(folder / "1001LV-B.jpg").convert("L")).copy()
    banded[: int(0.4 * banded.shape[0])] = 3
    Image.fromarray(banded).save(folder / "1001LV-B.jpg", quality=95)
    Image.fromarray(np.zeros_like(view)).save(folder / "1001RI-A.jpg")
    Image.fromarray(np.full_like(view, 255)).save(folder / "1001RI-B.jpg")
    proc = subprocess.run([sys.executable, "-m", "aneurysm", "check", "--root", str(kium_root),
                           "--workers", "1", "--show", "50"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    lines = proc.stdout.splitlines()
    assert any("inverted_polarity" in s and "1001LI-A.jpg" in s for s in lines), proc.stdout
    assert any("border_band_over_bound" in s and "1001LV-B.jpg" in s and "40%" in s
               for s in lines), proc.stdout
    for name in ("1001RI-A.jpg", "1001RI-B.jpg"):
        assert any("blank_image" in s and name in s for s in lines), proc.stdout


def test_paths_with_spaces_non_ascii_and_symlink_loops(kium_master, tmp_path):
    import os
    import shutil

    from click.testing import CliRunner

    from aneurysm.cli.main import cli
    from aneurysm.registry import get_adapter

    root = Path(shutil.copytree(kium_master, tmp_path / "Daten ü 1" / "kium"))
    folder = root / "train_set"
    os.symlink(folder, folder / "loop")  # a folder that contains itself
    os.symlink("loop_b", folder / "loop_a")  # two links pointing at each other
    os.symlink("loop_a", folder / "loop_b")
    assert len(get_adapter("kium").load(root, "train")) == 10
    result = CliRunner().invoke(cli, ["check", "--root", str(root), "--workers", "1",
                                      "--show", "50"])
    assert result.exit_code == 0, result.output
    assert "loop_a" in result.output and "unmatched_file" in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder: no permission to deny")
def test_an_unreadable_data_root_is_one_line(kium_master, tmp_path):
    import shutil

    root = Path(shutil.copytree(kium_master, tmp_path / "kium"))
    (root / "train_set").chmod(0)
    try:
        proc = subprocess.run([sys.executable, "-m", "aneurysm", "check", "--root", str(root)],
                              capture_output=True, text=True)
    finally:
        (root / "train_set").chmod(0o755)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "train_set" in proc.stdout + proc.stderr  # named, as an error line or a finding


@pytest.mark.parametrize("case", ["zero bytes", "text named .jpg", "truncated", "png named .jpg",
                                  "16-bit", "1x1"])
def test_odd_image_files_read_or_fail_in_one_line(tmp_path, case):
    path = tmp_path / "1001LI-A.jpg"
    grey = (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)
    buf = io.BytesIO()
    if case == "zero bytes":
        path.write_bytes(b"")
    elif case == "text named .jpg":
        path.write_text("Index,Aneurysm\n1001,0\n")
    elif case == "truncated":
        Image.fromarray(grey).save(buf, "JPEG")
        path.write_bytes(buf.getvalue()[:300])
    elif case == "png named .jpg":
        Image.fromarray(grey).save(buf, "PNG")
        path.write_bytes(buf.getvalue())
    elif case == "16-bit":
        Image.fromarray(grey.astype(np.uint16) * 257).save(buf, "PNG")
        path.write_bytes(buf.getvalue())
    else:
        Image.fromarray(np.full((1, 1), 200, np.uint8)).save(buf, "JPEG")
        path.write_bytes(buf.getvalue())
    if case in ("zero bytes", "text named .jpg", "truncated"):
        with pytest.raises(DataError) as err:
            load_grayscale(path)
        assert "1001LI-A.jpg" in str(err.value) and "\n" not in str(err.value)
        return
    image = load_grayscale(path)
    assert image.dtype == np.uint8 and image.ndim == 2
    if case != "1x1":  # the content is read, not guessed from the name
        assert np.corrcoef(image.ravel().astype(float), grey.ravel())[0, 1] > 0.99
    out = clean_angiogram(image, PreprocessConfig(image_size=32))
    assert out.shape == (32, 32)
