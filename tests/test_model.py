import pytest
import torch

from aneurysm.errors import AneurysmError
from aneurysm.model import ModelConfig, build_model
from aneurysm.model.checkpoint import load_init, save_checkpoint
from aneurysm.model.losses import masked_bce, noisy_or_loss
from aneurysm.schema import KIUM_VIEW_NAMES, LOCATION_NAMES, view_index
from aneurysm.training.augment import mirror_location_scores, mirror_study

VIEW_IDS = torch.tensor([[view_index(v) for v in KIUM_VIEW_NAMES]])


def _model(**kw):
    torch.manual_seed(0)
    return build_model(ModelConfig(**kw)).eval()


def test_absent_views_take_no_part():
    model = _model()
    images = torch.rand(1, 8, 1, 32, 32)
    mask = torch.tensor([[True] * 7 + [False]])
    out = model(images, VIEW_IDS, mask)
    assert out["presence"].shape == (1,) and out["locations"].shape == (1, 21)
    assert out["attention"][0, 7] == 0 and torch.isclose(out["attention"].sum(), torch.tensor(1.0))
    images2 = images.clone()
    images2[0, 7] = torch.rand(1, 32, 32)  # change only the absent view
    out2 = model(images2, VIEW_IDS, mask)
    assert torch.allclose(out["presence"], out2["presence"])
    images2[0, 0] = torch.rand(1, 32, 32)  # a present view does matter
    assert not torch.allclose(out["presence"], model(images2, VIEW_IDS, mask)["presence"])


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


def test_left_right_swap_respects_anatomy():
    images = torch.rand(8, 1, 4, 4)
    locs = torch.zeros(21)
    locs[LOCATION_NAMES.index("L_MCA")] = 1
    sample = {"images": images, "view_ids": VIEW_IDS[0], "view_mask": torch.ones(8, dtype=bool),
              "locations": locs, "location_known": torch.ones(21, dtype=bool),
              "group_members": torch.zeros(0, 21)}
    m = mirror_study(sample)
    li_a, ri_a = KIUM_VIEW_NAMES.index("LI-A"), KIUM_VIEW_NAMES.index("RI-A")
    li_b, ri_b = KIUM_VIEW_NAMES.index("LI-B"), KIUM_VIEW_NAMES.index("RI-B")
    assert torch.equal(m["images"][li_a], torch.flip(images[ri_a], dims=[-1]))  # frontal: mirrored
    assert torch.equal(m["images"][li_b], images[ri_b])  # lateral: swapped, not flipped
    assert m["locations"][LOCATION_NAMES.index("R_MCA")] == 1 and m["locations"].sum() == 1
    back = mirror_study(m)
    assert torch.equal(back["images"], images) and torch.equal(back["locations"], locs)
    assert torch.equal(mirror_location_scores(m["locations"]), locs)


def test_init_loads_body_allows_other_heads_and_strips_prefixes(tmp_path):
    src = _model()
    state = {f"module._orig_mod.{k}": v for k, v in src.state_dict().items()}
    torch.save({"state_dict": state, "metadata": {"backbone": "timm/test_resnet",
                                                  "image_size": 64}}, tmp_path / "p.pt")
    dst = _model()
    torch.nn.init.zeros_(dst.project.weight)
    load_init(dst, tmp_path / "p.pt", {"backbone": "timm/test_resnet", "image_size": 64})
    assert torch.equal(dst.project.weight, src.project.weight)

    with pytest.raises(AneurysmError, match="image_size: checkpoint has 64, this run uses 128"):
        load_init(dst, tmp_path / "p.pt", {"backbone": "timm/test_resnet", "image_size": 128})
    other = build_model(ModelConfig(embed_dim=64))
    save_checkpoint(tmp_path / "o.pt", other, {"backbone": "timm/test_resnet"})
    with pytest.raises(AneurysmError) as err:
        load_init(_model(), tmp_path / "o.pt", {"backbone": "timm/test_resnet"})
    assert "shape differs" in str(err.value) and "project.weight" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_backbones_by_config_string_and_bad_names():
    from aneurysm.errors import ConfigError
    from aneurysm.model import create_backbone

    assert create_backbone("monai/densenet121").num_features == 1024
    with pytest.raises(ConfigError, match="timm/<name>"):
        create_backbone("resnet18")
    with pytest.raises(ConfigError):
        create_backbone("timm/no_such_net")
