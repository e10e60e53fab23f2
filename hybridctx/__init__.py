"""hybridctx: chunk-free landmark retrieval, exact-budget packing and cost routing.

Importing this package loads only the standard library and numpy; torch,
faiss and transformers load on first use of the names that need them.

    from hybridctx import HybridContext
    HybridContext.build(["book.txt"], "book.idx")
    packed = HybridContext.open("book.idx").retrieve("Who is the Hatter?", budget=1000)
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from hybridctx.datatypes import Document, Landmark, PackedContext, Span
from hybridctx.errors import (
    BudgetError,
    ConfigError,
    HybridCtxError,
    IndexStoreError,
    InputError,
    MissingDependencyError,
)

__version__ = "0.1.0"

__all__ = [
    "BudgetError",
    "ConfigError",
    "Document",
    "EncoderConfig",
    "GrowthRule",
    "HybridContext",
    "HybridCtxError",
    "IndexReport",
    "IndexStoreError",
    "InputError",
    "Landmark",
    "MissingDependencyError",
    "PackedContext",
    "RetrievalConfig",
    "Retriever",
    "Span",
    "SpanCandidate",
    "WindowedLandmarkEncoder",
    "get_counter",
    "load_documents",
    "pack",
    "split_sentences",
]

_LAZY = {
    "EncoderConfig": "hybridctx.embeddings.config",
    "GrowthRule": "hybridctx.retrieval.spans",
    "HybridContext": "hybridctx.facade",
    "IndexReport": "hybridctx.ingest.indexing",
    "RetrievalConfig": "hybridctx.retrieval.retriever",
    "Retriever": "hybridctx.retrieval.retriever",
    "SpanCandidate": "hybridctx.packing.packer",
    "WindowedLandmarkEncoder": "hybridctx.embeddings.windowed",
    "get_counter": "hybridctx.packing.tokens",
    "load_documents": "hybridctx.ingest.documents",
    "pack": "hybridctx.packing.packer",
    "split_sentences": "hybridctx.ingest.segmentation",
}

logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.ingest.documents import load_documents
    from hybridctx.embeddings.config import EncoderConfig
    from hybridctx.embeddings.windowed import WindowedLandmarkEncoder
    from hybridctx.facade import HybridContext
    from hybridctx.ingest.indexing import IndexReport
    from hybridctx.packing.packer import SpanCandidate, pack
    from hybridctx.retrieval.retriever import RetrievalConfig, Retriever
    from hybridctx.ingest.segmentation import split_sentences
    from hybridctx.retrieval.spans import GrowthRule
    from hybridctx.packing.tokens import get_counter


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hybridctx' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
