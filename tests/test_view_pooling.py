"""Pooling across views: the biplane cue (each view reads the rows where its partner view
responds) and the study's presence by noisy-OR or by the clearest view."""

import pytest
import torch

from aneurysm.errors import AneurysmError, ConfigError
from aneurysm.model import ModelConfig, build_model
from aneurysm.model.checkpoint import load_model, save_checkpoint
from aneurysm.model.dense import biplane_evidence, pool_views, row_profile, smooth_max
from aneurysm.schema import KIUM_VIEW_NAMES, biplane_partner, view_index

VIEW_IDS = torch.tensor([[view_index(v) for v in KIUM_VIEW_NAMES]])
SMALL = {"width": 8, "decoder_channels": (16, 8, 8), "embed_dim": 16}


def _maps(peaks: dict[str, tuple[int, int]], size: int = 16) -> torch.Tensor:
    """Flat maps at -6 with one +4 cell per named view."""
    maps = torch.full((1, 8, size, size), -6.0)
    for name, (row, col) in peaks.items():
        maps[0, KIUM_VIEW_NAMES.index(name), row, col] = 4.0
    return maps


def test_partners_are_the_other_projection_of_the_same_injection():
    assert biplane_partner("LI-A") == "LI-B" and biplane_partner("RV-B") == "RV-A"
    assert all(biplane_partner(biplane_partner(v)) == v for v in KIUM_VIEW_NAMES)


def test_the_partners_rows_are_zero_where_it_responds_and_negative_elsewhere():
    maps = _maps({"LI-B": (5, 12)})
    rows = biplane_evidence(maps, VIEW_IDS, torch.ones(1, 8, dtype=torch.bool), 5.0, band=3)
    li_a = rows[0, KIUM_VIEW_NAMES.index("LI-A")]
    assert torch.all(li_a[4:7] == 0)  # the row and the band around it
    assert torch.all(li_a[:4] < -1) and torch.all(li_a[7:] < -1)
    # RI-A's partner (RI-B) is flat: no row stands out, so nothing is taken off
    assert torch.all(rows[0, KIUM_VIEW_NAMES.index("RI-A")] == 0)
    assert torch.equal(row_profile(maps, 5.0, 1)[0, 1, 5], torch.tensor(0.0))


def test_an_absent_partner_gives_nothing_and_slot_order_does_not_matter():
    maps = _maps({"LI-B": (5, 12), "LV-A": (9, 3)})
    mask = torch.ones(1, 8, dtype=torch.bool)
    rows = biplane_evidence(maps, VIEW_IDS, mask, 5.0, band=1)
    mask[0, KIUM_VIEW_NAMES.index("LI-B")] = False
    assert torch.all(biplane_evidence(maps, VIEW_IDS, mask, 5.0, 1)[0, 0] == 0)
    order = torch.tensor([3, 7, 0, 5, 1, 6, 2, 4])
    shuffled = biplane_evidence(maps[:, order], VIEW_IDS[:, order],
                                torch.ones(1, 8, dtype=torch.bool), 5.0, band=1)
    assert torch.equal(shuffled, rows[:, order])


def test_a_peak_its_partner_shares_outranks_one_it_does_not():
    """The same frontal peak scores higher when the lateral view responds in its rows."""
    same = _maps({"LI-A": (5, 3), "LI-B": (5, 12)})
    other = _maps({"LI-A": (5, 3), "LI-B": (13, 12)})
    mask = torch.ones(1, 8, dtype=torch.bool)
    scores = [smooth_max(m + 0.5 * biplane_evidence(m, VIEW_IDS, mask, 5.0, 3)[..., None], 5.0)
              for m in (same, other)]
    assert scores[0][0, 0] > scores[1][0, 0] + 1.0


@pytest.mark.parametrize("band", [1, 3])
def test_a_biplane_model_treats_absent_views_as_missing_slots(band):
    torch.manual_seed(0)
    model = build_model(ModelConfig(cross_view="biplane", cross_view_band=band, **SMALL)).eval()
    images = torch.rand(1, 8, 1, 32, 32)
    mask = torch.tensor([[True, False, True, True, False, True, True, True]])
    full = model(images, VIEW_IDS, mask)
    keep = mask[0]
    short = model(images[:, keep], VIEW_IDS[:, keep], torch.ones(1, int(keep.sum()), dtype=bool))
    assert torch.allclose(full["presence"], short["presence"], atol=1e-5)
    assert torch.allclose(full["locations"], short["locations"], atol=1e-5)
    # the partner's image now changes the frontal view's logit, through the rows alone
    images2 = images.clone()
    images2[0, 1] = torch.rand(1, 32, 32)
    both = torch.ones(1, 8, dtype=torch.bool)
    assert not torch.allclose(model(images, VIEW_IDS, both)["view_logits"][0, 0],
                              model(images2, VIEW_IDS, both)["view_logits"][0, 0])


def test_the_biplane_weight_is_part_of_the_architecture(tmp_path):
    with_cue = build_model(ModelConfig(cross_view="biplane", **SMALL))
    assert "heads.biplane.weight" in with_cue.state_dict()
    assert "heads.biplane.weight" not in build_model(ModelConfig(**SMALL)).state_dict()
    save_checkpoint(tmp_path / "m.pt", with_cue, {})
    with pytest.raises(AneurysmError, match="m.pt"):
        load_model(tmp_path / "m.pt", ModelConfig(**SMALL))


def test_bad_biplane_settings_are_named():
    with pytest.raises(ConfigError, match="model.cross_view"):
        ModelConfig(cross_view="stereo")
    with pytest.raises(ConfigError, match="cross_view_band"):
        ModelConfig(cross_view="biplane", cross_view_band=2)


def test_max_pooling_reads_the_clearest_view_and_ignores_absent_ones():
    torch.manual_seed(0)
    model = build_model(ModelConfig(view_pool="max", **SMALL)).eval()
    images = torch.rand(2, 8, 1, 32, 32)
    mask = torch.tensor([[True] * 8, [True, False, True, True, False, True, True, True]])
    out = model(images, VIEW_IDS.expand(2, 8), mask)
    views = out["view_logits"]
    best = views.masked_fill(~mask, -float("inf")).amax(1)
    assert torch.all(out["presence"] >= best - 1e-6)
    assert torch.all(out["presence"] <= best + torch.log(mask.sum(1).float()) / 5.0 + 1e-6)
    keep = mask[1]
    short = model(images[1:, keep], VIEW_IDS[:, keep], torch.ones(1, int(keep.sum()), dtype=bool))
    assert torch.allclose(out["presence"][1], short["presence"][0], atol=1e-5)


def test_many_weak_alarms_add_up_under_noisy_or_but_not_under_max():
    """Seven views at p = 0.2 and one absent: noisy-OR reads 1 - 0.8^7 = 0.79, the maximum
    about 0.2; the absent view counts in neither."""
    weak = torch.full((1, 8), torch.logit(torch.tensor(0.2)).item())
    mask = torch.tensor([[True] * 7 + [False]])
    assert torch.sigmoid(pool_views(weak, mask, "noisy_or", 5.0)).item() == pytest.approx(
        1 - 0.8 ** 7, abs=1e-4)
    assert 0.2 <= torch.sigmoid(pool_views(weak, mask, "max", 5.0)).item() < 0.3
    one = weak.clone()
    one[0, 3] = 3.0  # one clear sighting decides under max
    assert torch.sigmoid(pool_views(one, mask, "max", 5.0)).item() > 0.95


def test_a_bad_view_pool_is_named():
    with pytest.raises(ConfigError, match="model.view_pool"):
        ModelConfig(view_pool="mean")
