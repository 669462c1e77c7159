"""Models behind one registry (``model.registry``): a dense aneurysm map per view (the default)
and a globally pooled feature per view (the baseline), fused over the views of a study.

Names resolve on first use: reading a config (``aneurysm.model.config``) or ``aneurysm --help``
must not pay MONAI's import, several seconds on a small CPU.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"DenseMultiViewNet": ".dense", "ModelConfig": ".config", "GlobalMultiViewNet": ".global_net",
          "build_model": ".registry", "register_model": ".registry", "create_backbone": ".backbone"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
