"""The encoder protocol: what the index and retriever need from any embedding model.

Why a protocol: the windowed transformers encoder is the default, but FlagEmbedding
models, ONNX runtimes or a remote service can stand in as long as they turn a
document's sentences into landmark vectors and a query into a vector.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["DocumentInput", "LandmarkEncoder"]

#: One document to encode: its exact text and its sentences' char ranges.
DocumentInput = tuple[str, Sequence[tuple[int, int]]]


@runtime_checkable
class LandmarkEncoder(Protocol):
    """Turns sentences (read in their context) and queries into unit vectors."""

    @property
    def dim(self) -> int: ...

    @property
    def identity(self) -> Mapping[str, Any]:
        """What must match between an index and the encoder that queries it."""
        ...

    def encode_documents(
        self, documents: Sequence[DocumentInput], *, show_progress: bool | None = None
    ) -> list[np.ndarray]:
        """Returns, per document, ``(n_sentences, dim) float32``, L2-normalised."""
        ...

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Returns ``(n_queries, dim) float32``, L2-normalised."""
        ...
