"""A crop rendered on its own: only the rays through a window of the detector, at the view's
pitch or finer, are what a whole render at that pitch shows there; and a view cast again with
more rays (the second look's source for volumes) is the render at that finer pitch."""

import numpy as np
import pytest

from aneurysm.projection import ProjectionConfig
from aneurysm.projection.drr import DetectorWindow
from aneurysm.projection.render import (FOOTPRINT_ANEURYSM, LESION, fine_spacing,
                                        project_volume)


def _labelled_sac():
    """A vessel (radius 1.5 mm) with a 1.2-mm sac on its wall, 0.5-mm voxels, and its label."""
    shape = (100, 100, 120)
    x, y, z = np.indices(shape) * 0.5
    vessel = (x - 25) ** 2 + (y - 25) ** 2 <= 1.5**2
    centre = np.array([25 + 1.5 + 1.0, 25.0, 30.0])  # mm
    sac = ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) <= 1.2**2
    image = np.where(vessel | sac, 500.0, 0.0).astype(np.float32)
    labels = np.where(sac, LESION, 0).astype(np.uint8)
    return image, labels, [(centre / 0.5, 1.2 / 0.5)]


def _config(pixels: int) -> ProjectionConfig:
    return ProjectionConfig(pixels=pixels, spacing_mm=0.5, fov_mm=50, territories=False)


def _render(pixels: int, windows=None, fine_pixels: int = 0):
    image, labels, lesions = _labelled_sac()
    return project_volume(image, (0.5, 0.5, 0.5), "3DRA", _config(pixels), lesions=lesions,
                          labels=labels, windows=windows, fine_pixels=fine_pixels)


@pytest.mark.parametrize("view", ["LI-A", "LI-B"])
def test_a_window_rendered_alone_equals_that_part_of_the_whole_view(view):
    whole = _render(128)
    point = next(p for p in whole.positions if p["view"] == view)
    left, top = int(point["x"]) - 12, int(point["y"]) - 12
    crop = (slice(top, top + 24), slice(left, left + 24))
    part = _render(128, {view: DetectorWindow(left, top, 24, 24)})
    assert set(part.views) == {view}  # only the asked view is cast
    assert part.views[view].shape == (24, 24)
    assert np.abs(part.views[view].astype(int) - whole.views[view][crop]).max() <= 1
    assert np.array_equal(part.footprints[view], whole.footprints[view][crop])
    assert (part.footprints[view] == FOOTPRINT_ANEURYSM).any()  # the sac is in it
    assert part.positions == [p for p in whole.positions if p["view"] == view]


def test_a_window_sampled_finer_equals_a_whole_render_at_that_finer_pitch():
    view = "LI-B"
    coarse = _render(96)
    point = next(p for p in coarse.positions if p["view"] == view)
    left, top = int(point["x"]) - 8, int(point["y"]) - 8
    part = _render(96, {view: DetectorWindow(left, top, 16, 48)})  # three rays per pixel
    fine = _render(288)
    crop = (slice(3 * top, 3 * top + 48), slice(3 * left, 3 * left + 48))
    rendered, expected = part.views[view].astype(int), fine.views[view][crop].astype(int)
    assert np.abs(rendered - expected).max() <= 1  # float rounding at a grey level's edge
    footprint, expected_fp = part.footprints[view], fine.footprints[view][crop]
    assert (footprint != expected_fp).mean() < 0.01
    # and it is finer than the view: the sac covers about nine times the pixels it does there
    sac_fine = (footprint == FOOTPRINT_ANEURYSM).sum()
    sac_coarse = (coarse.footprints[view][top:top + 16, left:left + 16] == FOOTPRINT_ANEURYSM).sum()
    assert 5 * sac_coarse <= sac_fine <= 14 * sac_coarse


def test_a_view_cast_with_more_rays_is_the_whole_render_at_that_pitch():
    both = _render(64, fine_pixels=192)
    coarse, fine = _render(64), _render(192)
    assert set(both.fine) == set(both.views) == set(fine.views)
    for view, cast in both.fine.items():
        assert np.array_equal(both.views[view], coarse.views[view])  # the view itself is kept
        assert cast.shape == (192, 192)
        assert np.abs(cast.astype(int) - fine.views[view]).max() <= 1
    # the sac where the view's positions put it, three times as finely drawn
    point = next(p for p in both.positions if p["view"] == "LI-B")
    x, y = round(3 * point["x"] + 1), round(3 * point["y"] + 1)
    assert (fine.footprints["LI-B"][y - 1:y + 2, x - 1:x + 2] == FOOTPRINT_ANEURYSM).any()
    assert both.fine["LI-B"][y, x] < 0.8 * np.median(both.fine["LI-B"])  # dark: contrast


def test_a_finer_cast_is_sampled_no_finer_than_the_volume_allows():
    config = ProjectionConfig().resolved(128)  # a 180-mm field: 1.41-mm grid
    assert fine_spacing(config, (1.5, 1.5, 1.5), 512) == config.spacing_mm  # nothing finer there
    assert fine_spacing(config, (0.75, 0.75, 0.8), 512) == 0.75
    assert fine_spacing(config, (0.3, 0.3, 0.3), 512) == 0.5  # the floor
    assert fine_spacing(config, (0.3, 0.3, 0.3), 256) == pytest.approx(180 / 256)  # a ray's pitch
    # a grid twice as coarse as the rays: the cast stops at two rays per voxel
    image, labels, lesions = _labelled_sac()
    capped = project_volume(image, (0.5, 0.5, 0.5), "3DRA", _config(64), fine_pixels=512)
    assert {c.shape for c in capped.fine.values()} == {(200, 200)}  # 2 x 50 mm / 0.5 mm
