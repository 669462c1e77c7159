import math

import pytest
import torch
import torch.nn.functional as F

from aneurysm.data.batches import prepare_batch
from aneurysm.errors import AneurysmError
from aneurysm.model import ModelConfig, build_model
from aneurysm.model.checkpoint import (
    load_init,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from aneurysm.model.dense import log1mexp, noisy_or_logit, pool_views, smooth_max
from aneurysm.schema import KIUM_VIEW_NAMES, LOCATION_NAMES, view_index
from aneurysm.training.losses import map_loss, masked_bce, multitask_loss, noisy_or_loss

VIEW_IDS = torch.tensor([[view_index(v) for v in KIUM_VIEW_NAMES]])
MODELS = ("dense", "global")


def _model(name="dense", **kw):
    torch.manual_seed(0)
    return build_model(ModelConfig.create(name, **kw)).eval()


@pytest.mark.parametrize("name", MODELS)
def test_absent_views_take_no_part(name):
    model = _model(name)
    images = torch.rand(1, 8, 1, 32, 32)
    mask = torch.tensor([[True] * 7 + [False]])
    out = model(images, VIEW_IDS, mask)
    assert out["presence"].shape == (1,) and out["locations"].shape == (1, 21)
    images2 = images.clone()
    images2[0, 7] = torch.rand(1, 32, 32)  # change only the absent view
    out2 = model(images2, VIEW_IDS, mask)
    assert torch.allclose(out["presence"], out2["presence"])
    assert torch.allclose(out["locations"], out2["locations"])
    images2[0, 0] = torch.rand(1, 32, 32)  # a present view does matter
    assert not torch.allclose(out["presence"], model(images2, VIEW_IDS, mask)["presence"])


@pytest.mark.parametrize("name", MODELS)
def test_a_study_with_absent_views_equals_one_without_those_slots(name):
    model = _model(name)
    images = torch.rand(1, 8, 1, 32, 32)
    mask = torch.tensor([[True, False, True, True, False, True, True, True]])
    keep = mask[0]
    full = model(images, VIEW_IDS, mask)
    short = model(images[:, keep], VIEW_IDS[:, keep], torch.ones(1, int(keep.sum()), dtype=bool))
    assert torch.allclose(full["presence"], short["presence"], atol=1e-5)
    assert torch.allclose(full["locations"], short["locations"], atol=1e-5)


def test_smooth_maximum_rises_with_any_single_pixel():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(20, 16, 16, generator=g, dtype=torch.float64)
    base = smooth_max(maps, 5.0)
    assert (base <= maps.flatten(1).amax(1) + 1e-6).all()
    assert (base >= maps.flatten(1).mean(1) - 1e-6).all()
    for k in range(20):
        bumped = maps.clone()
        r, c = (int(v) for v in torch.randint(0, 16, (2,), generator=g))
        bumped[k, r, c] += 0.5
        after = smooth_max(bumped, 5.0)
        assert after[k] > base[k]
        assert torch.equal(torch.cat([after[:k], after[k + 1:]]),
                           torch.cat([base[:k], base[k + 1:]]))


def test_noisy_or_in_log_space_matches_the_formula():
    p = torch.tensor([[0.1, 0.5, 0.0001], [0.999, 0.2, 0.3]], dtype=torch.float64)
    logit = noisy_or_logit(torch.log1p(-p).sum(1))
    expect = 1 - torch.prod(1 - p, 1)
    assert torch.allclose(torch.sigmoid(logit), expect, atol=1e-9)
    x = torch.tensor([-1e-5, -0.5, -3.0, -40.0], dtype=torch.float64)
    assert torch.allclose(log1mexp(x), torch.log(1 - torch.exp(x)), rtol=1e-6)


def test_dense_outputs_a_map_per_view_at_stride_four():
    out = _model()(torch.rand(2, 8, 1, 64, 64), VIEW_IDS.repeat(2, 1),
                   torch.ones(2, 8, dtype=bool))
    assert out["maps"].shape == (2, 8, 16, 16)
    assert out["view_logits"].shape == (2, 8) and out["view_locations"].shape == (2, 8, 21)
    assert ((out["peaks"] >= 0) & (out["peaks"] <= 1)).all()
    # a study is at least as likely to hold an aneurysm as its most convincing view
    assert (torch.sigmoid(out["presence"]) >= torch.sigmoid(out["view_logits"]).amax(1) - 1e-6).all()


def test_a_fourth_decoder_block_draws_the_map_at_stride_two_from_the_stem():
    config = ModelConfig.create(decoder_channels=(64, 32, 16, 8))
    assert config.map_stride == 2 and ModelConfig().map_stride == 4
    assert ModelConfig.create(stem_unshuffle=2).map_stride == 8
    model = _model(decoder_channels=(64, 32, 16, 8))
    images, mask = torch.rand(1, 8, 1, 64, 64), torch.ones(1, 8, dtype=bool)
    out = model(images, VIEW_IDS, mask)
    assert out["maps"].shape == (1, 8, 32, 32) and out["arteries"].shape[-2:] == (32, 32)
    # a one-pixel spot moves the map most at its own cell: the map is drawn at stride 2
    moved = images.clone()
    moved[0, 0, 0, 41, 21] += 3.0
    change = (model(moved, VIEW_IDS, mask)["maps"][0, 0] - out["maps"][0, 0]).abs()
    row, col = divmod(int(change.argmax()), 32)
    assert abs(row - 41 // 2) <= 1 and abs(col - 21 // 2) <= 1
    with pytest.raises(AneurysmError, match="decoder_channels"):
        ModelConfig.create(decoder_channels=(64, 32))


def test_unshuffle_stem_sees_every_pixel_at_the_cost_of_the_smaller_view():
    model = _model(stem_unshuffle=2)
    images = torch.rand(1, 8, 1, 64, 64)
    mask = torch.ones(1, 8, dtype=bool)
    out = model(images, VIEW_IDS, mask)
    assert out["maps"].shape == (1, 8, 8, 8)  # stride 8 on the 64-px view
    # the first layer takes 2 x 2 pixel blocks as channels: a one-pixel change inside a block
    # still moves that block's map cell, so nothing is thrown away by the downsampling
    moved = images.clone()
    moved[0, 0, 0, 17, 17] += 1.0
    assert (model(moved, VIEW_IDS, mask)["maps"][0, 0] - out["maps"][0, 0]).abs().max() > 0
    small = _model()
    assert sum(p.numel() for p in model.parameters()) - sum(
        p.numel() for p in small.parameters()) == 3 * 5 * 5 * 16  # three more input channels


def test_map_loss_counts_known_cells_only():
    maps = torch.zeros(1, 2, 4, 4, requires_grad=True)
    target = torch.zeros(1, 2, 4, 4)
    target[0, 0, 1, 1] = 1
    weight = torch.ones(1, 2, 4, 4)
    weight[0, 1] = 0  # the second view: unknown everywhere
    loss = map_loss(maps, target, weight, torch.ones(1, 2, dtype=bool))
    loss.backward()
    assert maps.grad[0, 1].abs().sum() == 0
    assert maps.grad[0, 0, 1, 1] < 0 and maps.grad[0, 0, 0, 0] > 0


def test_map_loss_gamma_zero_is_bce_per_aneurysm_cell_and_two_spares_unlikely_cells():
    maps = torch.full((1, 1, 4, 4), -3.0)  # the map already calls every cell unlikely
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 1] = 1
    weight, mask = torch.ones(1, 1, 4, 4), torch.ones(1, 1, dtype=bool)
    bce = F.binary_cross_entropy_with_logits(maps, target, reduction="sum")  # one aneurysm cell
    assert torch.isclose(map_loss(maps, target, weight, mask, gamma=0.0), bce)
    negatives = weight - target
    plain, focal = (map_loss(maps, target * 0, negatives, mask, gamma=g) for g in (0.0, 2.0))
    assert focal < plain / 100  # an unlikely vessel cell barely counts under the focal loss


def test_footprints_train_the_map_and_the_views_but_not_on_k_ium():
    model = _model()
    model.train()
    cells = torch.full((1, 8, 8, 8), 128, dtype=torch.uint8)  # K-ium: nothing known of where
    batch = prepare_batch({
        "images": torch.randint(0, 255, (1, 8, 32, 32), dtype=torch.uint8),
        "view_ids": VIEW_IDS, "view_mask": torch.ones(1, 8, dtype=bool),
        "presence": torch.ones(1), "presence_known": torch.ones(1, dtype=bool),
        "locations": torch.zeros(1, 21), "location_known": torch.zeros(1, 21, dtype=bool),
        "footprints": cells})
    out = model(batch["images"], batch["view_ids"], batch["view_mask"])
    plain = masked_bce(out["presence"], batch["presence"], batch["presence_known"])
    assert torch.isclose(multitask_loss(out, batch), plain)
    batch = prepare_batch({**batch, "footprints": torch.zeros(1, 8, 8, 8, dtype=torch.uint8)})
    assert multitask_loss(out, batch) > plain  # known negatives: maps and views are trained


def test_unknown_labels_contribute_nothing():
    logits = torch.tensor([[0.3, -1.0, 2.0]])
    known = torch.tensor([[True, False, True]])
    a = masked_bce(logits, torch.tensor([[1.0, 0.0, 0.0]]), known)
    b = masked_bce(logits, torch.tensor([[1.0, 1.0, 0.0]]), known)  # differs where unknown
    assert torch.isclose(a, b)


def test_group_label_trains_a_noisy_or_of_its_members():
    logits = torch.zeros(1, 21, requires_grad=True)
    members = torch.zeros(1, 1, 21)
    i, j = LOCATION_NAMES.index("L_ACOM"), LOCATION_NAMES.index("R_ACOM")
    members[0, 0, [i, j]] = 1
    loss = noisy_or_loss(logits, members, torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool))
    assert torch.isclose(loss, -torch.log(torch.tensor(1 - 0.25)), atol=1e-5)  # P(any)=0.75
    loss.backward()
    grad = logits.grad[0]
    assert grad[i] < 0 and grad[j] < 0  # pushes both members up
    assert torch.count_nonzero(grad) == 2  # and nothing else


def test_init_loads_body_allows_other_heads_and_strips_prefixes(tmp_path):
    src = _model("global")
    arch = src.config.architecture()
    state = {f"module._orig_mod.{k}": v for k, v in src.state_dict().items()}
    torch.save({"state_dict": state, "metadata": {"model": arch, "image_size": 64}},
               tmp_path / "p.pt")
    dst = _model("global")
    torch.nn.init.zeros_(dst.project.weight)
    load_init(dst, tmp_path / "p.pt", {"model": arch, "image_size": 64})
    assert torch.equal(dst.project.weight, src.project.weight)

    with pytest.raises(AneurysmError, match="image_size: checkpoint has 64, this run uses 128"):
        load_init(dst, tmp_path / "p.pt", {"model": arch, "image_size": 128})
    other = build_model(ModelConfig.create("global", embed_dim=64))
    save_checkpoint(tmp_path / "o.pt", other, {})
    with pytest.raises(AneurysmError) as err:
        load_init(_model("global"), tmp_path / "o.pt", {})
    assert "shape differs" in str(err.value) and "project.weight" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_a_dense_checkpoint_does_not_load_into_a_global_model(tmp_path):
    dense = _model()
    save_checkpoint(tmp_path / "d.pt", dense, {"model": dense.config.architecture()})
    glob = _model("global")
    with pytest.raises(AneurysmError, match="'global'"):
        load_init(glob, tmp_path / "d.pt", {"model": glob.config.architecture()})


def test_bad_model_settings_are_named(tmp_path):
    from aneurysm.config import load_config
    from aneurysm.errors import ConfigError

    with pytest.raises(ConfigError, match="model.name must be one of"):
        ModelConfig(name="sparse")
    with pytest.raises(ConfigError, match="decoder_channels"):
        ModelConfig.create(decoder_channels=(8, 8))
    path = tmp_path / "odd.yaml"
    path.write_text("preprocess: {image_size: 130}\nmodel: {dense: {stem_unshuffle: 4}}\n")
    with pytest.raises(ConfigError, match="multiple of model.dense.stem_unshuffle"):
        load_config(path)
    path = tmp_path / "bad.yaml"
    path.write_text("model: {name: sparse}\n")
    with pytest.raises(ConfigError, match="model.name must be one of"):
        load_config(path)
    path.write_text("model: {name: global, dense: {width: 8}}\n")  # another model's settings
    with pytest.raises(ConfigError, match="unknown keys \\['dense'\\]"):
        load_config(path)


def test_backbones_by_config_string_and_bad_names():
    from aneurysm.errors import ConfigError
    from aneurysm.model import create_backbone

    assert create_backbone("monai/densenet121").num_features == 1024
    with pytest.raises(ConfigError, match="timm/<name>"):
        create_backbone("resnet18")
    with pytest.raises(ConfigError):
        create_backbone("timm/no_such_net")


def test_noisy_or_over_views_counts_one_aneurysm_seen_twice_once():
    """Two views each 50% sure of an aneurysm: P = 0.75, not 1.0 and not 0.5."""
    log_not = 2 * math.log(0.5)
    assert math.isclose(float(torch.sigmoid(noisy_or_logit(torch.tensor(log_not)))), 0.75,
                        rel_tol=1e-5)


class _RunsCode:
    """What a hostile checkpoint holds: unpickling it would call ``open(marker, "w")``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "metadata": _RunsCode(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(AneurysmError, match="refused: loading it needs pickle"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all\n", b"PK\x03\x04junk"])
def test_junk_given_as_a_checkpoint_is_one_clear_error(tmp_path, content):
    (tmp_path / "junk.pt").write_bytes(content)
    with pytest.raises(AneurysmError, match="junk.pt: not a"):
        read_checkpoint(tmp_path / "junk.pt")


@pytest.mark.parametrize("payload", [[1, 2], {"state_dict": [1]}, {"state_dict": {"w": 3}},
                                     {"state_dict": {}, "metadata": [1]}])
def test_a_foreign_payload_is_not_an_aneurysm_checkpoint(tmp_path, payload):
    torch.save(payload, tmp_path / "f.pt")
    with pytest.raises(AneurysmError, match="not an aneurysm checkpoint"):
        read_checkpoint(tmp_path / "f.pt")


def test_load_model_rebuilds_a_saved_model_and_refuses_another_config(tmp_path):
    config = ModelConfig.create("dense", width=8, decoder_channels=[16, 8, 8], embed_dim=16)
    model = build_model(config)
    save_checkpoint(tmp_path / "m.pt", model, {})
    loaded = load_model(tmp_path / "m.pt", config)
    assert not loaded.training
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    wider = ModelConfig.create("dense", width=16, decoder_channels=[16, 8, 8], embed_dim=16)
    with pytest.raises(AneurysmError, match=r"m.pt: does not fit the run's model config: shape differs") as err:
        load_model(tmp_path / "m.pt", wider)
    assert "\n" not in str(err.value)
    other_head = ModelConfig.create("global", backbone="timm/test_resnet", embed_dim=16)
    with pytest.raises(AneurysmError, match=r"missing \(\d+\).*unexpected \(\d+\)"):
        load_model(tmp_path / "m.pt", other_head)


def test_weak_alarms_add_up_and_an_absent_view_counts_nothing():
    """Seven views at p = 0.2 and one absent: 1 - 0.8^7 = 0.79."""
    weak = torch.full((1, 8), torch.logit(torch.tensor(0.2)).item())
    mask = torch.tensor([[True] * 7 + [False]])
    assert torch.sigmoid(pool_views(weak, mask)).item() == pytest.approx(1 - 0.8 ** 7, abs=1e-4)
    louder = weak.clone()
    louder[0, 7] = 5.0  # the absent view's logit is ignored, however high
    assert torch.equal(pool_views(louder, mask), pool_views(weak, mask))
    louder[0, 2] = 3.0  # a present one's rises the study's
    assert pool_views(louder, mask) > pool_views(weak, mask)


def test_a_checkpoint_from_before_the_registry_still_initialises(tmp_path):
    """Its architecture named the model ``head``; today's name is ``model``."""
    src = _model()
    arch = src.config.architecture()
    old = {"head": arch["model"], **{k: v for k, v in arch.items() if k != "model"}}
    save_checkpoint(tmp_path / "old.pt", src, {"model": old})
    dst = _model()
    assert load_init(dst, tmp_path / "old.pt", {"model": arch}) == []
    changed = {**old, "width": 99}
    save_checkpoint(tmp_path / "other.pt", src, {"model": changed})
    with pytest.raises(AneurysmError, match="width"):
        load_init(_model(), tmp_path / "other.pt", {"model": arch})


def test_a_narrow_map_network_gets_the_right_gradients_on_any_number_of_views():
    """13 views through a width-8 encoder, channels last, two threads: oneDNN's strided 1x1
    weight gradient wrote out of bounds here (a crash or wrong gradients) until those
    convolutions became subsample-then-1x1. Its float32 gradients now match float64. (Eval-mode
    batch norm: in training mode a near-constant channel's batch statistics amplify float32's
    rounding to whole percents, whichever kernel runs.)"""
    import copy

    from aneurysm.model.dense import MapNet

    torch.manual_seed(0)
    net = MapNet(8, (1, 1, 1, 1), (16, 8, 8)).eval()
    views = torch.rand(13, 1, 64, 64)

    def gradients(model, x):
        maps, _ = model(x)
        (maps * torch.linspace(-1, 1, maps.shape[-1], dtype=maps.dtype)).sum().backward()
        return {n: p.grad.double() for n, p in model.named_parameters() if p.dim() > 1}

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the crash needed two threads; other tests may have set one
    try:
        trained = gradients(copy.deepcopy(net), views)
    finally:
        torch.set_num_threads(threads)
    exact = gradients(copy.deepcopy(net).double(), views.double())
    assert any("downsample" in name for name in trained)
    for name, grad in exact.items():
        scale = grad.abs().max()
        assert scale > 0, name
        assert torch.allclose(trained[name], grad, atol=1e-4 * scale.item()), name


def test_the_subsampled_shortcut_keeps_the_weights_the_result_and_the_seeded_draws():
    from aneurysm.model.strided_pointwise import subsample_pointwise

    def build():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2))

    plain, swapped = build(), build()
    subsample_pointwise(swapped)
    after_swap = torch.rand(4)
    build()
    assert torch.equal(after_swap, torch.rand(4))  # a seeded run draws what it drew before
    assert type(swapped[0]) is not torch.nn.Conv2d
    assert torch.equal(swapped[0].weight, plain[0].weight)
    x = torch.rand(3, 8, 15, 15)
    assert torch.allclose(swapped(x), plain(x), atol=1e-6)
