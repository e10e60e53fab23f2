"""hybridctx: chunk-free landmark retrieval, exact-budget packing and cost routing.

Importing this package loads only the standard library and numpy; torch,
faiss and transformers load on first use of the names that need them.

    from hybridctx import HybridContext, load_llm
    HybridContext.build(["book.txt"], "book.idx")
    hc = HybridContext.open("book.idx")
    packed = hc.retrieve("Who is the Hatter?", budget=1000)
    answer = hc.ask("Who is the Hatter?", load_llm("local"))

``__all__`` is the public surface, grouped by the pipeline: build (documents,
encoders, the index), retrieve (options, packed spans), route (limits,
decisions), ask (LLMs, answers), and the error tree. Everything else is
importable from its module but not promised.
"""

import importlib as _importlib
import logging as _logging
import typing as _typing

from hybridctx.errors import (
    BudgetError,
    ConfigError,
    ContextLengthError,
    DocumentError,
    EncoderError,
    EncoderMismatchError,
    HybridCtxError,
    IndexCorruptError,
    IndexLockedError,
    IndexNotFoundError,
    IndexStoreError,
    IndexVersionError,
    InputError,
    LLMError,
    MissingDependencyError,
    UntrustedStoreError,
)

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "BudgetError",
    "ConfigError",
    "ContextLengthError",
    "Document",
    "DocumentError",
    "EncoderConfig",
    "EncoderError",
    "EncoderMismatchError",
    "HybridContext",
    "HybridCtxError",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexNotFoundError",
    "IndexReport",
    "IndexStoreError",
    "IndexVersionError",
    "InputError",
    "LLMError",
    "Landmark",
    "MissingDependencyError",
    "PackedContext",
    "RetrievalConfig",
    "RetrievalOptions",
    "Retriever",
    "RouteDecision",
    "RouteLimits",
    "Router",
    "Span",
    "UntrustedStoreError",
    "WindowedLandmarkEncoder",
    "get_counter",
    "load_documents",
    "load_encoder",
    "load_llm",
    "split_sentences",
]

# Where each lazily loaded name lives (loaded on first use, then kept in the module).
_LAZY = {
    # the facade: build -> retrieve -> route -> ask
    "HybridContext": "hybridctx.facade",
    # build
    "Document": "hybridctx.datatypes",
    "Landmark": "hybridctx.datatypes",
    "load_documents": "hybridctx.ingest.documents",
    "split_sentences": "hybridctx.ingest.segmentation",
    "EncoderConfig": "hybridctx.embeddings.config",
    "WindowedLandmarkEncoder": "hybridctx.embeddings.windowed",
    "load_encoder": "hybridctx.embeddings.registry",
    "IndexReport": "hybridctx.ingest.indexing",
    # retrieve
    "RetrievalConfig": "hybridctx.retrieval.retriever",
    "RetrievalOptions": "hybridctx.retrieval.retriever",
    "Retriever": "hybridctx.retrieval.retriever",
    "PackedContext": "hybridctx.datatypes",
    "Span": "hybridctx.datatypes",
    "get_counter": "hybridctx.packing.tokens",
    # route
    "Router": "hybridctx.routing.router",
    "RouteLimits": "hybridctx.routing.router",
    "RouteDecision": "hybridctx.routing.router",
    # ask
    "load_llm": "hybridctx.llms.registry",
    "Answer": "hybridctx.routing.answering",
}

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

if _typing.TYPE_CHECKING:  # pragma: no cover
    from hybridctx.datatypes import Document, Landmark, PackedContext, Span
    from hybridctx.embeddings.config import EncoderConfig
    from hybridctx.embeddings.registry import load_encoder
    from hybridctx.embeddings.windowed import WindowedLandmarkEncoder
    from hybridctx.facade import HybridContext
    from hybridctx.ingest.documents import load_documents
    from hybridctx.ingest.indexing import IndexReport
    from hybridctx.ingest.segmentation import split_sentences
    from hybridctx.llms.registry import load_llm
    from hybridctx.packing.tokens import get_counter
    from hybridctx.retrieval.retriever import RetrievalConfig, RetrievalOptions, Retriever
    from hybridctx.routing.answering import Answer
    from hybridctx.routing.router import RouteDecision, RouteLimits, Router


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hybridctx' has no attribute '{name}'")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
