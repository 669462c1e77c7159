"""Shared fixtures: small synthetic K-ium roots written by the real synthesizer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aneurysm.synth.kium import SynthConfig, write_kium


@pytest.fixture(scope="session")
def kium_master(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "kium"
    write_kium(root, SynthConfig(patients=10, test=5, seed=3, image_size=96), workers=1,
               progress=False)
    return root


@pytest.fixture
def kium_root(kium_master: Path, tmp_path: Path) -> Path:
    """A private copy the test may damage."""
    return Path(shutil.copytree(kium_master, tmp_path / "kium"))


@pytest.fixture(scope="session")
def external_master(tmp_path_factory) -> Path:
    from aneurysm.synth.external import ExternalSynthConfig, write_external

    root = tmp_path_factory.mktemp("external")
    write_external(root, ExternalSynthConfig(rsna=5, adam=4, lausanne=4, cada=2, topcow=1,
                                             seed=2, spacing=2.0), workers=1, progress=False)
    return root


@pytest.fixture
def external_root(external_master: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(external_master, tmp_path / "data"))


def write_config(folder: Path, name: str = "tiny.yaml", **sections: dict) -> Path:
    """A tiny, fast experiment config (32 px, small models, 2 epochs, a private cache) in
    ``folder``; ``sections`` update its sections key by key."""
    import yaml

    values = {"data": {"cache_dir": str(folder / "cache"), "workers": 1},
              "preprocess": {"image_size": 32},
              "model": {"embed_dim": 32},
              "train": {"epochs": 2, "pretrain_epochs": 2, "batch_size": 4, "seed": 7,
                        "threads": 1}}
    for section, entries in sections.items():
        values.setdefault(section, {}).update(entries)
    path = folder / name
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture
def cfg(tmp_path) -> Path:
    return write_config(tmp_path)
