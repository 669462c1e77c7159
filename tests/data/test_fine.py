"""The second look's fine views: a second cache keyed like the first, in one array file that
folds share, written whole or not at all."""

import numpy as np
import pytest

from aneurysm.config import ExperimentConfig, load_config
from aneurysm.data.arrays import build_arrays, image_caches
from aneurysm.data.dataset import StudyDataset
from aneurysm.data.fine import FineViews
from aneurysm.preprocessing import PreprocessConfig
from aneurysm.registry import get_adapter


def _arrays(root, tmp_path, fine_size=64):
    records = get_adapter("kium").load(root, "train")
    config = PreprocessConfig(image_size=32, fine_size=fine_size)
    cache, fine = image_caches(str(tmp_path / "cache"), config)
    arrays, _, _ = build_arrays(records, cache, workers=1, progress=False, fine_cache=fine)
    return records, arrays, fine


def test_fine_views_stay_on_disk_and_are_shared_by_subsets(kium_root, tmp_path):
    records, arrays, fine = _arrays(kium_root, tmp_path)
    assert isinstance(arrays.fine, FineViews) and arrays.fine.shape[-2:] == (64, 64)
    assert arrays.fine.shape[:2] == arrays.images.shape[:2]
    sub = arrays.subset([3, 1])
    assert sub.fine is arrays.fine  # a fold maps the same file, it copies no rows
    item = StudyDataset(sub)[0]
    assert item["fine"].shape == (arrays.images.shape[1], 64, 64)
    view = records[3].views[0]
    assert np.array_equal(item["fine"][0].numpy(), fine.load(view.path))
    files = list((tmp_path / "cache" / "fine").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npy"  # no temporary file left behind
    mtime = files[0].stat().st_mtime_ns
    _, again, _ = _arrays(kium_root, tmp_path)  # the next run maps the same file
    assert files[0].stat().st_mtime_ns == mtime
    assert np.array_equal(np.load(files[0]), np.stack([again.fine[i] for i in range(len(again))]))
    with pytest.raises(IndexError):
        again.fine[len(again)]


def test_fine_size_keeps_the_first_cache_and_is_read_only_by_a_second_look(tmp_path):
    assert (PreprocessConfig(fine_size=512).cache_params()
            == PreprocessConfig().cache_params())  # the 128-px cache is not rebuilt
    config = ExperimentConfig(preprocess=PreprocessConfig(fine_size=512))  # model: no crops
    assert not config.model.second_look
    _, fine = image_caches(str(tmp_path / "c"), config.preprocess, config.model.second_look)
    assert fine is None
    with pytest.raises(ValueError, match="at least"):
        PreprocessConfig(image_size=256, fine_size=128)
    path = tmp_path / "c.yaml"
    path.write_text("preprocess: {fine_size: 256}\nmodel: {dense: {crops: 4}}\n")
    config = load_config(path)
    assert config.preprocess.fine().image_size == 256 and config.model.settings.crops == 4


def test_projected_studies_read_their_views_cast_with_more_rays(external_root, tmp_path):
    from aneurysm.projection import ProjectionConfig, project_records
    from aneurysm.projection.stage import fine_path
    from aneurysm.sources import load_sources

    records = load_sources(["lausanne"], external_root)[0]["lausanne"][:2]
    projection = ProjectionConfig().resolved(32)
    cache, fine = image_caches(str(tmp_path / "cache"), PreprocessConfig(image_size=32,
                                                                         fine_size=64))
    plain = project_records(records, tmp_path / "cache", projection, workers=1, progress=False)
    arrays, _, _ = build_arrays(plain.records, cache, workers=1, progress=False, fine_cache=fine)
    assert arrays.fine is None  # nothing finer to read: crops come from the views themselves
    cast = project_records(records, tmp_path / "cache", projection, workers=1, progress=False,
                           fine_pixels=64)
    arrays, _, _ = build_arrays(cast.records, cache, workers=1, progress=False, fine_cache=fine)
    assert arrays.fine is not None and arrays.fine.shape[-2:] == (64, 64)
    for i, (before, after) in enumerate(zip(plain.records, cast.records)):
        for j, (v0, v1) in enumerate(zip(before.views, after.views)):
            assert bool(v0.path) == bool(v1.path)
            if not v1.path:
                assert not arrays.fine[i][j].any()
                continue
            assert v0.path != v1.path  # casts have a projection folder of their own
            assert np.array_equal(arrays.fine[i][j], fine.load(fine_path(v1.path, 64)))
            assert np.array_equal(cache.load(v0.path), cache.load(v1.path))  # same views
