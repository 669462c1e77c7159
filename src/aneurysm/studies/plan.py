"""Which runs a study needs: each arm's resolved config per seed, and the hash of it.

Two arms whose resolved configs hash the same run once (an arm that restates a default, a
baseline two studies share). The hash names the run's folder, so a killed study resumes where
it stopped and a later call adds arms to the same seeds and data without rerunning the rest.
Only the values that differ from the code's defaults are hashed, so a config key added later
(at its default) leaves every finished run where it is. Folders named by the older hash of the
whole config are still found and used.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io.hashing import params_hash
from .spec import Arm, Study, StudyError

#: where and how fast a run happens, not what it measures: left out of the hash
ENVIRONMENT = {"data": ("cache_dir", "workers"), "train": ("device", "threads", "track")}
#: what only fine-tuning reads: a pretraining's hash leaves it out
FINETUNE_ONLY = {"train": ("epochs",)}
RESULT = "result.json"


@dataclass(frozen=True)
class Job:
    """One run of one seed (a pretraining or a fine-tuning), named by its hash."""
    kind: str  # "pretrain" or "finetune"
    key: str
    seed: int
    run_dir: str
    data_root: str
    config: dict  # the resolved experiment config as plain values, environment included
    share: float = 1.0
    val_fraction: float = 0.2
    folds: int = 3
    init: str | None = None  # a fine-tuning's pretraining run folder; None: from scratch
    splits: str | None = None  # a fine-tuning's folds file, shared by its seed's arms

    @property
    def result_path(self) -> Path:
        return Path(self.run_dir) / RESULT


@dataclass(frozen=True)
class Assignment:
    """Which runs give one arm's numbers in one seed."""
    study: str
    seed: int
    arm: str
    job: Job  # the run scored in the tables
    pretraining: Job | None = None  # a fine-tuning arm's pretraining (its own metrics)


def plan(studies: list[Study], out: Path, seeds: list[int] | None = None,
         environment: dict[str, dict] | None = None) -> list[Assignment]:
    """Every (study, seed, arm) and its runs; arms that hash alike get the same Job."""
    jobs: dict[str, Job] = {}

    def unique(job: Job) -> Job:
        return jobs.setdefault(job.run_dir, job)

    out_list = []
    for study in studies:
        for seed in seeds or study.seeds:
            folder = out / f"seed_{seed}"
            env = {"data": {"cache_dir": str(folder / "cache"), **(environment or {}).get(
                "data", {})}, "train": dict((environment or {}).get("train", {}))}
            for arm in study.arms:
                config = arm_values(study, arm, seed, env)
                pre = None
                keys: tuple[str | None, str | None] = (None, None)
                if study.kind == "pretrain" or arm.pretrained:
                    keys = tuple(pretrain_key(config, arm.share, study.val_fraction, whole)
                                 for whole in (False, True))
                    key = _folder(folder / "pretrain", *keys)
                    pre = unique(Job("pretrain", key, seed, str(folder / "pretrain" / key),
                                     str(folder / "data"), config, arm.share,
                                     study.val_fraction))
                job = pre
                if study.kind == "finetune":
                    key = _folder(folder / "finetune", *(params_hash({
                        "run": "finetune", "config": measured(config, whole=whole),
                        "init": init, "folds": study.folds, "kium": study.kium})
                        for init, whole in zip(keys, (False, True))))
                    job = unique(Job("finetune", key, seed, str(folder / "finetune" / key),
                                     str(folder / "data"), config, folds=study.folds,
                                     init=pre.run_dir if pre else None,
                                     splits=str(folder / f"splits_{study.folds}_folds.json")))
                assert job is not None
                out_list.append(Assignment(study.name, seed, arm.name, job,
                                           pre if job is not pre else None))
    return out_list


def arm_values(study: Study, arm: Arm, seed: int, environment: dict[str, dict]) -> dict:
    """The arm's resolved config as plain values: the study's base config, its overrides, the
    arm's, the seed, then where it runs. A bad override is one line naming the arm."""
    from ..config import config_to_dict, with_overrides

    try:
        config = _base(study.config)
        for layer in (study.overrides, arm.overrides, {"train": {"seed": seed}},
                      _present(environment)):
            config = with_overrides(config, layer)
    except ConfigError as exc:
        raise StudyError(f"study {study.name}, arm {arm.name!r}: {exc}") from None
    return config_to_dict(config)


@lru_cache(maxsize=8)
def _base(path: str | None) -> Any:
    from ..config import load_config

    return load_config(path)


def _present(values: dict[str, dict]) -> dict[str, dict]:
    return {s: {k: v for k, v in entries.items() if v is not None}
            for s, entries in values.items()}


def _folder(parent: Path, key: str, whole_key: str) -> str:
    """The run's folder name: its key, or the older whole-config key where only that exists."""
    return whole_key if (parent / whole_key).is_dir() and not (parent / key).exists() else key


def measured(config: dict, leave_out: dict[str, tuple[str, ...]] | None = None,
             whole: bool = False) -> dict:
    """``config`` without the keys that do not change what a run measures, and (unless
    ``whole``) without those at the code's default value for its model."""
    values = copy.deepcopy(config)
    for drop in (ENVIRONMENT, leave_out or {}):
        for section, keys in drop.items():
            for key in keys:
                values.get(section, {}).pop(key, None)
    if whole:
        return values
    name = values.get("model", {}).get("name", "dense")
    out = changed(values, _defaults(name))
    out.setdefault("model", {})["name"] = name  # its own defaults would hide which model it is
    return out


def changed(values: dict, defaults: dict) -> dict:
    """The entries of ``values`` that differ from ``defaults``, section by section."""
    out = {}
    for key, value in values.items():
        default = defaults.get(key, _MISSING)
        if isinstance(value, dict) and isinstance(default, dict):
            if inner := changed(value, default):
                out[key] = inner
        elif value != default:
            out[key] = value
    return out


_MISSING = object()


@lru_cache(maxsize=4)
def _defaults(model: str) -> dict:
    from ..config import config_to_dict, load_config

    return config_to_dict(load_config(None, {"model": {"name": model}}))


def pretrain_key(config: dict, share: float, val_fraction: float, whole: bool = False) -> str:
    return params_hash({"run": "pretrain", "config": measured(config, FINETUNE_ONLY, whole),
                        "share": share, "val_fraction": val_fraction})


def check_studies(studies: list[Study]) -> None:
    """Resolve every arm's config once, so a bad override stops a study before it starts."""
    for study in studies:
        for arm in study.arms:
            arm_values(study, arm, study.seeds[0], {})


def describe(assignments: list[Assignment]) -> str:
    """Which run each arm maps to, seed by seed: arms that hash alike name the same run."""
    lines, shared = [], {}
    for a in assignments:
        shared.setdefault(a.job.run_dir, []).append(a.arm)
    for a in assignments:
        pre = f" (from pretraining {a.pretraining.key})" if a.pretraining else ""
        also = [n for n in shared[a.job.run_dir] if n != a.arm]
        lines.append(f"{a.study}, seed {a.seed}, {a.arm}: {a.job.kind} {a.job.key}{pre}"
                     + (f", the same run as {', '.join(also)}" if also else ""))
    runs = {a.job.run_dir for a in assignments} | {
        a.pretraining.run_dir for a in assignments if a.pretraining}
    return "\n".join(lines + [f"{len(runs)} runs for {len(assignments)} arm-seeds"])
