"""docs/extending.md, step by step: a toy adapter, a toy model and a toy projection mode, each
registered as the page says and run through the real code paths."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from aneurysm_adapters._common import (
    VolumeSourceAdapter,
    mask_labels,
    presence_only_record,
)
from conftest import write_config
from torch import nn

from aneurysm.config import load_config
from aneurysm.errors import ConfigError, DataError
from aneurysm.inference.predict import predict_run
from aneurysm.model.checkpoint import read_checkpoint
from aneurysm.model.registry import MODELS, register_model
from aneurysm.projection import project_records
from aneurysm.projection.config import ProjectionConfig
from aneurysm.projection.modes import PROJECTION_MODES, Rays, register_projection_mode
from aneurysm.registry import _runtime, get_adapter, register_adapter
from aneurysm.schema import NUM_LOCATIONS, StudyRecord, VolumeRef
from aneurysm.sources import load_sources
from aneurysm.workflows.finetune import finetune

# -- an adapter -------------------------------------------------------------------------------

class ToyAdapter(VolumeSourceAdapter):
    """One folder per case: image.nii.gz and mask.nii.gz; every case is positive."""
    name = "toy"
    description = "a toy 3-D source: <case>/image.nii.gz + mask.nii.gz"
    folder_name = "toy"

    def _items(self, root: Path):
        if not root.is_dir():
            raise DataError(root, "toy root not found")
        return iter(sorted(p for p in root.iterdir() if p.is_dir()))

    def _case(self, case: Path) -> StudyRecord:
        image, mask = case / "image.nii.gz", case / "mask.nii.gz"
        if not mask.is_file():
            raise DataError(case, "no mask.nii.gz")
        return presence_only_record(self.name, case.name, case.name, "3DRA",
                                    int(len(mask_labels(mask)) > 0),
                                    VolumeRef("nifti", str(image), (str(mask),)))


@pytest.fixture
def toy_adapter():
    register_adapter(ToyAdapter)
    yield ToyAdapter
    _runtime.pop("toy", None)


def _toy_root(external_master: Path, tmp_path: Path) -> Path:
    """The synthetic CADA cases, laid out as the toy source expects."""
    root = tmp_path / "data" / "toy"
    for image in sorted((external_master / "cada").rglob("*_orig.nii.gz")):
        stem = image.name[: -len("_orig.nii.gz")]
        case = root / stem
        case.mkdir(parents=True)
        shutil.copy(image, case / "image.nii.gz")
        shutil.copy(image.with_name(f"{stem}_masks.nii.gz"), case / "mask.nii.gz")
    return root


def test_a_registered_adapter_loads_and_projects_like_a_built_in_one(
        toy_adapter, external_master, tmp_path):
    root = _toy_root(external_master, tmp_path)
    assert get_adapter("toy").description.startswith("a toy")
    by_source, skipped = load_sources(["toy"], tmp_path / "data")
    records = by_source["toy"]
    assert len(records) == 2 and not any(skipped.values())
    assert all(r.source == "toy" and r.presence == 1 and r.volume for r in records)
    projected = project_records(records, tmp_path / "cache", ProjectionConfig(pixels=32),
                                workers=1, progress=False)
    views = [v for r in projected.records for v in r.views if v.path]
    assert views and all(Path(v.path).is_file() for v in views)
    shutil.rmtree(root / sorted(p.name for p in root.iterdir())[0])
    (root / "broken").mkdir()
    with pytest.raises(DataError, match="no mask.nii.gz"):
        get_adapter("toy").load(root)


# -- a model ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToySettings:
    hidden: int = 8

    @property
    def backbone_name(self) -> str:
        return "toy/mean-pool"

    def architecture(self) -> dict:
        return {"hidden": self.hidden}


class ToyNet(nn.Module):
    """Each view's mean and spread, a tiny MLP, a mean over the present views."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        h = config.settings.hidden
        self.body = nn.Sequential(nn.Linear(2, h), nn.ReLU())
        self.heads = nn.ModuleDict({"presence": nn.Linear(h, 1),
                                    "locations": nn.Linear(h, NUM_LOCATIONS)})

    def forward(self, images, view_ids, view_mask):
        x = images.flatten(2)
        f = self.body(torch.stack([x.mean(-1), x.std(-1)], -1))  # (B, V, h)
        keep = view_mask.unsqueeze(-1).to(f.dtype)
        pooled = (f * keep).sum(1) / keep.sum(1).clamp_min(1)
        return {"presence": self.heads["presence"](pooled)[:, 0],
                "locations": self.heads["locations"](pooled)}


@pytest.fixture
def toy_model():
    register_model("toy", ToyNet, ToySettings)
    yield
    MODELS.pop("toy", None)


def test_a_registered_model_trains_predicts_and_takes_its_own_settings(
        toy_model, kium_root, tmp_path):
    cfg = write_config(tmp_path, model={"name": "toy", "toy": {"hidden": 4}},
                       train={"epochs": 1})
    config = load_config(cfg)
    assert config.model.settings == ToySettings(hidden=4)
    records = get_adapter("kium").load(kium_root, "train")
    finetune(tmp_path / "run", records, config, folds=2, progress=False)
    state = read_checkpoint(tmp_path / "run" / "fold_0" / "best.safetensors")
    assert state["state_dict"]["body.0.weight"].shape == (4, 2)
    assert state["metadata"]["model"] == {"model": "toy", "embed_dim": 32, "hidden": 4}
    test = get_adapter("kium").load(kium_root, "test")
    result = predict_run(tmp_path / "run", test, tmp_path / "output.csv", progress=False)
    table = pd.read_csv(tmp_path / "output.csv")
    assert len(table) == len(test) and result is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: toy, toy: {depth: 3}}\n")
    with pytest.raises(ConfigError, match="model.toy: unknown keys \\['depth'\\]"):
        load_config(bad)


# -- a projection mode ------------------------------------------------------------------------

@pytest.fixture
def silhouette_mode():
    @register_projection_mode("silhouette", reads="occupancy")
    def silhouette(rays: Rays, config: ProjectionConfig) -> np.ndarray:
        """Vessel or not: 60 where a ray meets any lumen, the background elsewhere."""
        return np.where(rays.total > 0.1, 60, config.background).astype(np.uint8)

    yield silhouette
    PROJECTION_MODES.pop("silhouette", None)


def test_a_registered_projection_mode_renders_and_keys_its_own_cache(
        silhouette_mode, external_master, tmp_path):
    record = load_sources(["cada"], external_master)[0]["cada"][:1]
    drr = ProjectionConfig(pixels=32)
    mode = ProjectionConfig(pixels=32, mode="silhouette")
    assert mode.cache_params() != drr.cache_params()
    out = project_records(record, tmp_path / "cache", mode, workers=1, progress=False)
    from PIL import Image

    views = [np.asarray(Image.open(v.path)) for r in out.records for v in r.views if v.path]
    assert views and all(set(np.unique(v)) <= {60, 205} for v in views)
    assert any((v == 60).any() for v in views)
    with pytest.raises(ValueError, match="silhouette"):
        ProjectionConfig(mode="nope")
    with pytest.raises(ValueError, match="already registered"):
        register_projection_mode("silhouette")(silhouette_mode)
