"""hybridctx.embeddings: how text becomes landmark vectors.

Names resolve lazily so that importing this package loads no torch.
"""

from __future__ import annotations

from typing import Any as _Any

__all__ = ["EncoderConfig", "LandmarkEncoder", "WindowedLandmarkEncoder", "load_encoder"]

_LAZY = {
    "EncoderConfig": ("hybridctx.embeddings.config", "EncoderConfig"),
    "LandmarkEncoder": ("hybridctx.embeddings.protocol", "LandmarkEncoder"),
    "WindowedLandmarkEncoder": ("hybridctx.embeddings.windowed", "WindowedLandmarkEncoder"),
    "load_encoder": ("hybridctx.embeddings.registry", "load_encoder"),
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'hybridctx.embeddings' has no attribute '{name}'")
