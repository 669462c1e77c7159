"""Multi-view, multi-task models: a dense aneurysm map per view (the default) or a globally pooled
feature per view, fused over the views of a study, with presence and location outputs."""

from .backbone import create_backbone
from .config import ModelConfig
from .dense import DenseMultiViewNet
from .multiview import MultiViewNet, build_model

__all__ = ["DenseMultiViewNet", "ModelConfig", "MultiViewNet", "build_model", "create_backbone"]
