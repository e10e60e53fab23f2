"""Plug-ins for LangChain and LlamaIndex.

Why a package of its own: both frameworks are optional extras, never
dependencies, so importing this package loads neither; each name below loads
its framework on first use and, when the framework is missing, raises
``MissingDependencyError`` naming the extra to install.

    from hybridctx.integrations.langchain import BudgetPacker, CostRouter, HybridCtxRetriever
    from hybridctx.integrations.llama_index import (
        BudgetPostprocessor, HybridCtxNodeRetriever, RoutedQueryEngine,
    )

``pip install 'hybridctx[langchain]'`` or ``pip install 'hybridctx[llamaindex]'``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BudgetPacker",
    "BudgetPostprocessor",
    "CostRouter",
    "HybridCtxNodeRetriever",
    "HybridCtxRetriever",
    "RoutedQueryEngine",
    "as_runnable",
]

_LAZY = {
    "BudgetPacker": "hybridctx.integrations.langchain",
    "CostRouter": "hybridctx.integrations.langchain",
    "HybridCtxRetriever": "hybridctx.integrations.langchain",
    "as_runnable": "hybridctx.integrations.langchain",
    "BudgetPostprocessor": "hybridctx.integrations.llama_index",
    "HybridCtxNodeRetriever": "hybridctx.integrations.llama_index",
    "RoutedQueryEngine": "hybridctx.integrations.llama_index",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hybridctx.integrations' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
