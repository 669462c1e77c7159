"""Find data-set adapters: built-in and third-party ones register the same way.

An adapter is any class with ``name``, ``description``, ``folder_name`` and
``load(root, split) -> list[StudyRecord]``; ``inspect(root)`` is optional and feeds the data
doctor. Register one from another package with an entry point in the ``aneurysm.adapters`` group,
or at run time with :func:`register_adapter`.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from .errors import AneurysmError
from .schema import StudyRecord

ENTRY_POINT_GROUP = "aneurysm.adapters"
DATA_ENV = "ANEURYSM_DATA"


@runtime_checkable
class Adapter(Protocol):
    name: str
    description: str
    folder_name: str

    def load(self, root: str | Path, split: str = "train") -> list[StudyRecord]: ...


_runtime: dict[str, type] = {}


def register_adapter(cls: type) -> type:
    """Register an adapter class at run time (usable as a decorator)."""
    if not isinstance(getattr(cls, "name", None), str):
        raise TypeError(f"{cls!r} needs a string attribute 'name'")
    _runtime[cls.name] = cls
    return cls


def _entry_point_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plug-in must not take the tool down
            raise AneurysmError(f"adapter entry point {ep.name!r} ({ep.value}) failed to load: "
                                f"{exc}") from None
    return found


def adapter_classes() -> dict[str, type]:
    return dict(sorted({**_entry_point_classes(), **_runtime}.items()))


def get_adapter(name: str) -> Adapter:
    classes = adapter_classes()
    if name not in classes:
        raise AneurysmError(f"unknown source {name!r}; registered adapters: "
                            f"{', '.join(classes) or 'none'}")
    adapter = classes[name]()
    if not isinstance(adapter, Adapter):
        raise AneurysmError(f"adapter {name!r} lacks name/description/folder_name/load")
    return adapter


def data_root(explicit: str | Path | None) -> Path | None:
    """``--data-root`` if given, else $ANEURYSM_DATA, else None."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else None


def source_root(adapter: Adapter, root: str | Path | None, data_root_: str | Path | None) -> Path:
    """A source's folder: ``--root`` wins, else ``DATA_ROOT/<folder_name>``."""
    if root is not None:
        return Path(root)
    base = data_root(data_root_)
    if base is None:
        raise AneurysmError(f"no folder for source {adapter.name!r}: pass --root, or --data-root "
                            f"/ ${DATA_ENV} holding a {adapter.folder_name}/ folder")
    return base / adapter.folder_name
