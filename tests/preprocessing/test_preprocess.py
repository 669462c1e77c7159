import re

import numpy as np
from PIL import Image, ImageDraw

from aneurysm.preprocessing import (
    ImageCache,
    PreprocessConfig,
    border_bands,
    clean_angiogram,
)


def _bordered_image(tmp_path):
    rng = np.random.default_rng(0)
    img = np.full((300, 400), 205, dtype=np.uint8)
    img[100:110, 50:350] = 60  # a vessel
    img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    img[:30, :] = 0  # top band
    img[:, -25:] = 8  # right band
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    draw.text((10, 8), "PATIENT 1234  80kV", fill=255)  # text in the band
    draw.text((150, 200), "L", fill=255)  # text burned into the picture
    path = tmp_path / "bordered.jpg"
    pil.save(path, quality=95)
    return path


def test_cleaning_removes_bands_and_text_and_makes_a_square(tmp_path):
    from aneurysm.io.images import load_grayscale

    raw = load_grayscale(_bordered_image(tmp_path))
    assert border_bands(raw)[0] >= 28 and border_bands(raw)[3] >= 23
    out = clean_angiogram(raw, PreprocessConfig(image_size=128))
    assert out.shape == (128, 128) and out.dtype == np.uint8
    assert border_bands(out) == (0, 0, 0, 0)
    assert np.median(out[:4]) > 150 and np.median(out[:, -4:]) > 150  # no dark band left
    assert out.max() < 240  # the white text is gone
    assert out.min() < 120  # the vessel survived


def test_cache_is_keyed_by_content_and_parameters(tmp_path):
    path = _bordered_image(tmp_path)
    cache_dir = tmp_path / "cache"
    small = ImageCache(cache_dir, PreprocessConfig(image_size=64))
    assert small.warm([path], workers=0, progress=False) == {}
    assert small.load(path).shape == (64, 64)
    entries = list(small.dir.glob("*.pt"))
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns

    again = ImageCache(cache_dir, PreprocessConfig(image_size=64))
    again.warm([path], workers=0, progress=False)
    assert [e.stat().st_mtime_ns for e in again.dir.glob("*.pt")] == [stamp]  # reused

    bigger = ImageCache(cache_dir, PreprocessConfig(image_size=96))
    assert bigger.dir != small.dir
    assert bigger.load(path).shape == (96, 96)  # not the stale 64-px entry

    Image.fromarray(np.full((50, 50), 200, dtype=np.uint8)).save(path)  # content changes
    assert small.load(path).shape == (64, 64)
    assert len(list(small.dir.glob("*.pt"))) == 2


def test_unreadable_images_are_reported_with_their_path(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    cache = ImageCache(tmp_path / "cache", PreprocessConfig(image_size=32))
    errors = cache.warm([bad], workers=0, progress=False)
    assert list(errors) == [str(bad)]


def test_preprocess_command_caches_a_source(kium_root, tmp_path):
    from click.testing import CliRunner

    from aneurysm.cli.main import cli

    args = ["preprocess", "--root", str(kium_root), "--image-size", "48",
            "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "120 images cached" in result.output
    (kium_root / "train_set" / "1001LI-A.jpg").write_bytes(b"broken")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "1001LI-A.jpg" in result.output
    result = CliRunner().invoke(cli, args + ["--skip-bad"])
    assert result.exit_code == 0 and "1 skipped" in result.output


def test_a_corrupt_cache_entry_is_rebuilt_not_trusted(kium_root, tmp_path):
    """A kill mid-write, a full disk or a stray file leaves an entry that must not be served."""
    a, b = kium_root / "train_set" / "1001LI-A.jpg", kium_root / "train_set" / "1001RV-B.jpg"
    config = PreprocessConfig(image_size=32)
    cache = ImageCache(tmp_path / "c", config)
    want_a, want_b = cache.load(a), cache.load(b)
    entry_a = next(p for p in cache.dir.glob("*.pt") if p.stat().st_mtime_ns
                   == min(q.stat().st_mtime_ns for q in cache.dir.glob("*.pt")))
    entry_b = next(p for p in cache.dir.glob("*.pt") if p != entry_a)
    good = entry_a.read_bytes()
    for damaged in (good[: len(good) // 2], b"", b"junk, not an entry", entry_b.read_bytes()):
        entry_a.write_bytes(damaged)
        fresh = ImageCache(tmp_path / "c", config)
        got = fresh.load(a)
        assert np.array_equal(got, want_a)
        assert np.array_equal(fresh.load(b), want_b)
        assert entry_a.read_bytes() != damaged  # rewritten


def test_shards_fill_one_shared_cache_between_them(kium_root, tmp_path):
    """Machines (or torchrun ranks) each take every N-th image into one shared cache; together
    they cache everything once, and a full pass afterwards finds nothing left to do."""
    from click.testing import CliRunner

    from aneurysm.cli.main import cli

    args = ["preprocess", "--root", str(kium_root), "--image-size", "48",
            "--cache-dir", str(tmp_path / "c")]
    counts = []
    for k in range(3):
        result = CliRunner().invoke(cli, args + ["--shard", f"{k}/3"])
        assert result.exit_code == 0, result.output
        counts.append(int(re.search(r"(\d+) images cached", result.output).group(1)))
    assert sum(counts) == 120 and all(c in (40, 41, 39) for c in counts)
    entries = sorted(p.name for p in (tmp_path / "c").rglob("*.pt"))
    assert len(entries) == 120
    result = CliRunner().invoke(cli, args)  # the whole source: already cached, nothing added
    assert result.exit_code == 0 and "120 images cached" in result.output
    assert sorted(p.name for p in (tmp_path / "c").rglob("*.pt")) == entries
    bad = CliRunner().invoke(cli, args + ["--shard", "3/3"])
    assert bad.exit_code == 2 and "K must be in 0..N-1" in bad.output
