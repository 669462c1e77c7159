"""A run folder records what produced it: resolved config, seed, software versions, git commit;
and each checkpoint carries the contract it was trained under."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from ..config import ExperimentConfig, config_to_dict
from ..errors import AneurysmError
from ..io.atomic import atomic_write_text
from ..schema import LOCATION_NAMES

_PACKAGES = ("aneurysm", "torch", "monai", "timm", "numpy", "scikit-learn", "pandas", "pillow")


def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5).stdout
        return res.stdout.strip() + ("+dirty" if dirty.strip() else "") if res.returncode == 0 \
            else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def prepare_run(run_dir: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a run unless --force; --resume needs an existing run."""
    exists = run_dir.exists() and any(run_dir.iterdir())
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise AneurysmError(f"{run_dir}: nothing to resume (no config.yaml)")
        return
    if exists and not force:
        raise AneurysmError(f"{run_dir}: run folder exists; use --resume to continue it or "
                            "--force to replace it")
    if exists:
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def write_run_metadata(run_dir: Path, config: ExperimentConfig, extra: dict) -> None:
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(config),
                                                              sort_keys=False))
    meta = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": config.train.seed,
        "command": " ".join(sys.argv),
        "git_commit": git_commit(),
        "versions": software_versions(),
        **extra,
    }
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=1))


def checkpoint_metadata(config: ExperimentConfig) -> dict:
    """The contract a checkpoint carries: what it expects as input and what it predicts."""
    return {
        "model": config.model.architecture(),
        "backbone": config.model.settings.backbone_name,
        "embed_dim": config.model.embed_dim,
        "image_size": config.preprocess.image_size,
        "labels": list(LOCATION_NAMES),
        "preprocess": config.preprocess.cache_params(),
        "versions": software_versions(),
    }
