"""The multi-view, multi-task model: a shared backbone over a bag of views, masked attention
fusion, and presence + location heads."""

from .backbone import create_backbone
from .multiview import ModelConfig, MultiViewNet, build_model

__all__ = ["ModelConfig", "MultiViewNet", "build_model", "create_backbone"]
