"""Models: annotation -> field info -> dialect-neutral table description."""

from .fields import FieldInfo
from .model import IndexInfo, ModelInfo, build_model

__all__ = ["FieldInfo", "IndexInfo", "ModelInfo", "build_model"]
