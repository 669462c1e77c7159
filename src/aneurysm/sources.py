"""Load and summarise several sources under one data root (``--source external``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .errors import AneurysmError
from .registry import adapter_classes, data_root, get_adapter
from .schema import StudyRecord


@dataclass(frozen=True)
class SourceSummary:
    name: str
    folder: str
    cases: int
    positive: int
    unknown: int
    modalities: str
    skipped: int


def external_names() -> list[str]:
    return [n for n, cls in adapter_classes().items() if not getattr(cls, "target", False)]


def expand_sources(names: tuple[str, ...] | list[str], root: Path | None) -> list[str]:
    """"external" -> every external adapter whose folder exists under the data root."""
    out: list[str] = []
    for name in names:
        if name == "external":
            if root is None:
                raise AneurysmError("--source external needs --data-root or $ANEURYSM_DATA")
            found = [n for n in external_names()
                     if (root / get_adapter(n).folder_name).is_dir()]
            if not found:
                raise AneurysmError(f"{root}: no external source folder "
                                    f"({', '.join(get_adapter(n).folder_name + '/' for n in external_names())})")
            out += found
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def load_sources(names: list[str], data_root_: str | Path | None, skip_bad: bool = False
                 ) -> tuple[dict[str, list[StudyRecord]], dict[str, list[str]]]:
    """{source: records} and {source: skipped problems} for each named source."""
    root = data_root(data_root_)
    records, skipped = {}, {}
    for name in expand_sources(names, root):
        adapter = get_adapter(name)
        if root is None:
            raise AneurysmError(f"source {name!r} needs --data-root or $ANEURYSM_DATA")
        folder = root / adapter.folder_name
        try:
            records[name] = adapter.load(folder, "train", skip_bad=skip_bad)
        except TypeError:  # an adapter without skip_bad
            records[name] = adapter.load(folder, "train")
        skipped[name] = list(getattr(adapter, "skipped", []))
    return records, skipped


def summarize(name: str, folder: Path, records: list[StudyRecord], skipped: int
              ) -> SourceSummary:
    modalities = Counter(r.modality for r in records)
    return SourceSummary(
        name, str(folder), len(records), sum(r.presence == 1 for r in records),
        sum(r.presence is None for r in records),
        ", ".join(f"{m} {n}" for m, n in sorted(modalities.items())), skipped)
