"""A study as data: its arms, baseline, seeds and data sizes, read from a YAML file.

Studies live in files rather than in code, so an arm is added without Python and a study can
be checked whole (every key known, every override a real config key) before hours of training
start. A mistake is one line naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import AneurysmError
from ..metrics import SIZE_BINS

#: "pretrain": arms are pretrainings, scored on pretraining's own validation split per source;
#: "finetune": arms are fine-tunings on synthetic K-ium (from a pretraining where the arm says
#: so), scored on held-out K-ium patients
KINDS = ("pretrain", "finetune")
#: the external sources whose validation split has negatives, so an AUROC
NEGATIVE_SOURCES = ("adam", "lausanne", "rsna2025")
#: columns of the mean ± sd table, per kind, as the runs' metrics name them
COLUMNS = {
    "pretrain": [*(f"{s} val AUROC" for s in NEGATIVE_SOURCES), "train AUROC, last epoch",
                 "map peaks on the aneurysm", "minutes"],
    "finetune": ["held-out AUROC", "CV AUROC, final epoch", "mean per-location AUROC, held-out",
                 *(f"held-out AUROC, {label}" for label, *_ in SIZE_BINS),
                 *(f"pretraining: {s} val AUROC" for s in NEGATIVE_SOURCES), "minutes"],
}
#: the metrics paired per seed, per kind (one table each)
COMPARED = {"pretrain": ["mean val AUROC"],
            "finetune": ["held-out AUROC", "mean per-location AUROC, held-out",
                         "held-out AUROC, under 2 mm", "held-out AUROC, 2-3 mm"]}
_KIUM_KEYS = ("patients", "test", "image_size")


class StudyError(AneurysmError):
    """A study file or a study's output folder that cannot be used; one line."""


@dataclass(frozen=True)
class Arm:
    """One setting of the experiment: config overrides, and what the harness does with it."""
    name: str
    #: {section: {key: value}} applied to the study's base config (nested dicts key by key)
    overrides: dict[str, dict] = field(default_factory=dict)
    #: pretrain on this share of each source's training patients, validation unchanged
    share: float = 1.0
    #: finetune studies: start from a pretraining on the external sources (false: scratch)
    pretrained: bool = True


@dataclass(frozen=True)
class Comparison:
    """A paired difference, ``arm`` − ``against``, per seed."""
    name: str
    arm: str
    against: str


@dataclass(frozen=True)
class Study:
    name: str
    kind: str
    arms: tuple[Arm, ...]
    baseline: str
    seeds: tuple[int, ...] = (0, 1, 2)
    #: ExternalSynthConfig fields but the seed (each seed draws its own)
    external: dict[str, Any] = field(default_factory=dict)
    kium: dict[str, int] | None = None  # SynthConfig patients, test, image_size (finetune)
    val_fraction: float = 0.2  # pretraining: validation share of each source
    folds: int = 3  # fine-tuning's patient-level folds
    config: str | None = None  # the base experiment config, absolute; None = built-in
    overrides: dict[str, dict] = field(default_factory=dict)  # every arm's, before its own
    pairs: tuple[Comparison, ...] = ()  # differences beyond "arm − baseline"
    description: str = ""

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise StudyError(f"study {self.name}: no arm {name!r}; arms: "
                         f"{', '.join(a.name for a in self.arms)}")

    def comparisons(self) -> list[Comparison]:
        """Every arm − the baseline, then the study's own pairs; a pair that restates an
        arm − the baseline is that comparison (under the pair's name), not a second one."""
        own = {(p.arm, p.against): p for p in self.pairs}
        return [own.pop((a.name, self.baseline), None)
                or Comparison(f"{a.name} − {self.baseline}", a.name, self.baseline)
                for a in self.arms if a.name != self.baseline] + list(own.values())

    def select(self, names: list[str] | None) -> "Study":
        """Only the arms named (and the baseline, which every difference needs)."""
        if not names:
            return self
        keep = {self.arm(n).name for n in names} | {self.baseline}
        pairs = tuple(p for p in self.pairs if {p.arm, p.against} <= keep)
        return dataclasses.replace(self, arms=tuple(a for a in self.arms if a.name in keep),
                                   pairs=pairs)

    def to_mapping(self) -> dict:
        """The study in its file's layout, as ``study_from_mapping`` reads it back (the copy a
        results file keeps, so its tables can be drawn again without the study file)."""
        data: dict[str, Any] = {"external": self.external, "val_fraction": self.val_fraction,
                                "folds": self.folds}
        if self.kium is not None:
            data["kium"] = self.kium
        arms = [{"name": a.name, "overrides": a.overrides, "share": a.share,
                 **({"pretrained": a.pretrained} if self.kind == "finetune" else {})}
                for a in self.arms]
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "config": self.config, "overrides": self.overrides, "seeds": list(self.seeds),
                "data": data, "baseline": self.baseline, "arms": arms,
                "pairs": [dataclasses.asdict(p) for p in self.pairs]}


def load_study(path: str | Path) -> Study:
    """A study file, checked; a relative ``config:`` is relative to the file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path}: study file not found") from None
    except IsADirectoryError:
        raise StudyError(f"{path}: a folder, not a study file") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise StudyError(f"{path}: expected a mapping (name, kind, baseline, arms, ...)")
    values.setdefault("name", path.stem)
    config = values.get("config")
    if isinstance(config, str):
        values["config"] = str((path.parent / config).resolve())
    return study_from_mapping(values, str(path))


_TOP = ("name", "kind", "description", "config", "overrides", "seeds", "data", "baseline",
        "arms", "pairs")
_DATA = ("external", "kium", "val_fraction", "folds")


def study_from_mapping(values: dict, where: str = "study") -> Study:
    """A study from plain values (a YAML file's, or a results file's copy)."""
    _known(values, _TOP, where)
    kind = values.get("kind")
    if kind not in KINDS:
        raise StudyError(f"{where}: kind must be one of {list(KINDS)}, got {kind!r}")
    arms = values.get("arms")
    if not isinstance(arms, list) or not arms:
        raise StudyError(f"{where}: arms must be a non-empty list of mappings")
    parsed = tuple(_arm(a, kind, f"{where}: arms[{k}]") for k, a in enumerate(arms))
    names = [a.name for a in parsed]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise StudyError(f"{where}: arm names repeat: {twice}")
    folders: dict[str, str] = {}
    for name in names:
        other = folders.setdefault(arm_folder(name), name)
        if other != name:
            raise StudyError(f"{where}: arms {other!r} and {name!r} would share the folder "
                             f"arms/{arm_folder(name)}; rename one")
    baseline = values.get("baseline", names[0])
    if baseline not in names:
        raise StudyError(f"{where}: baseline {baseline!r} is not one of the arms {names}")
    data = values.get("data") or {}
    if not isinstance(data, dict):
        raise StudyError(f"{where}: data must be a mapping ({', '.join(_DATA)})")
    _known(data, _DATA, f"{where}: data")
    kium = data.get("kium")
    if kind == "finetune" and not isinstance(kium, dict):
        raise StudyError(f"{where}: a finetune study needs data.kium "
                         f"({', '.join(_KIUM_KEYS)})")
    seeds = values.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise StudyError(f"{where}: seeds must be a list of integers, got {seeds!r}")
    return Study(
        name=str(values["name"]), kind=kind, arms=parsed, baseline=baseline,
        seeds=tuple(seeds), external=_external(data.get("external") or {}, where),
        kium=_kium(kium, where) if kium is not None else None,
        val_fraction=_number(data.get("val_fraction", 0.2), f"{where}: data.val_fraction",
                             0.0, 1.0),
        folds=int(_number(data.get("folds", 3), f"{where}: data.folds", 1, 100)),
        config=values.get("config"), overrides=_overrides(values.get("overrides"), where),
        pairs=tuple(_pair(p, names, f"{where}: pairs[{k}]")
                    for k, p in enumerate(values.get("pairs") or [])),
        description=str(values.get("description") or "").strip())


def _known(values: dict, keys: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise StudyError(f"{where}: unknown keys {unknown}; valid keys: {sorted(keys)}")


def _arm(values: Any, kind: str, where: str) -> Arm:
    if not isinstance(values, dict) or not isinstance(values.get("name"), str):
        raise StudyError(f"{where}: expected a mapping with a name")
    _known(values, ("name", "overrides", "share", "pretrained"), where)
    if kind == "pretrain" and "pretrained" in values:
        raise StudyError(f"{where} ({values['name']}): 'pretrained' is for finetune studies")
    pretrained = values.get("pretrained", True)
    if not isinstance(pretrained, bool):
        raise StudyError(f"{where} ({values['name']}): pretrained must be true or false")
    return Arm(values["name"], _overrides(values.get("overrides"), where),
               _number(values.get("share", 1.0), f"{where} ({values['name']}): share", 0.0, 1.0),
               pretrained)


def arm_folder(name: str) -> str:
    """The arm's folder under ``seed_S/arms``: its name with every run of characters other than
    letters, digits, '.' and '-' as one '_', so a path needs no quoting ("pretrained, DRR + arteries"
    -> "pretrained_DRR_arteries")."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_") or "arm"


def _overrides(values: Any, where: str) -> dict[str, dict]:
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise StudyError(f"{where}: overrides must be {{section: {{key: value}}}}")
    return values


def _pair(values: Any, names: list[str], where: str) -> Comparison:
    if not isinstance(values, dict):
        raise StudyError(f"{where}: expected a mapping (name, arm, against)")
    _known(values, ("name", "arm", "against"), where)
    for key in ("arm", "against"):
        if values.get(key) not in names:
            raise StudyError(f"{where}: {key} {values.get(key)!r} is not one of the arms")
    name = values.get("name") or f"{values['arm']} − {values['against']}"
    return Comparison(str(name), values["arm"], values["against"])


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            low < value <= high):
        raise StudyError(f"{where}: expected a number in ({low:g}, {high:g}], got {value!r}")
    return float(value)


def _external(values: Any, where: str) -> dict[str, Any]:
    from ..synth.external import ExternalSynthConfig

    if not isinstance(values, dict):
        raise StudyError(f"{where}: data.external must be a mapping")
    keys = tuple(f.name for f in dataclasses.fields(ExternalSynthConfig) if f.name != "seed")
    _known(values, keys, f"{where}: data.external")
    try:
        full = dataclasses.asdict(dataclasses.replace(ExternalSynthConfig(), **values))
    except TypeError as exc:
        raise StudyError(f"{where}: data.external: {exc}") from None
    return {k: full[k] for k in keys}


def _kium(values: dict, where: str) -> dict[str, int]:
    _known(values, _KIUM_KEYS, f"{where}: data.kium")
    out = {"patients": 150, "test": 80, "image_size": 256, **values}
    if not all(isinstance(v, int) and v > 0 for v in out.values()):
        raise StudyError(f"{where}: data.kium values must be positive integers, got {out}")
    return out
