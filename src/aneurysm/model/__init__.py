"""Multi-view, multi-task models: a dense aneurysm map per view (the default) or a globally pooled
feature per view, fused over the views of a study, with presence and location outputs.

Names resolve on first use: reading a config (``aneurysm.model.config``) or ``aneurysm --help``
must not pay MONAI's import, several seconds on a small CPU.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"DenseMultiViewNet": ".dense", "ModelConfig": ".config", "MultiViewNet": ".multiview",
          "build_model": ".multiview", "create_backbone": ".backbone"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
