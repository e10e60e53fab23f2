"""The encoder protocol: what the index and retriever need from any embedding model.

Why a protocol: the windowed transformers encoder is the default, but FlagEmbedding
models, ONNX runtimes or a remote service can stand in as long as they turn a
document's sentences into landmark vectors and a query into a vector.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["DocumentInput", "HeadedDocument", "Header", "LandmarkEncoder", "document_headers"]

#: One document to encode: its exact text and its sentences' char ranges.
DocumentInput = tuple[str, Sequence[tuple[int, int]]]

#: One heading of a document: the char offset where it starts and its header path
#: (title › section › subsection, outermost first), as the structure pass gives it.
Header = tuple[int, tuple[str, ...]]


class HeadedDocument(tuple):  # type: ignore[type-arg]
    """A :data:`DocumentInput` that also carries the document's headings.

    It is still the ``(text, sentences)`` pair (it unpacks and indexes as one), so
    an encoder that knows nothing of headings reads it as before; one that reads
    its context with the header path (``header_prefix_tokens``) finds them in
    :attr:`headers`, in document order.
    """

    headers: tuple[Header, ...]

    def __new__(cls, text: str, sentences: Sequence[tuple[int, int]] | np.ndarray,
                headers: Sequence[Header] = ()) -> "HeadedDocument":
        self = super().__new__(cls, (text, sentences))
        self.headers = tuple((int(start), tuple(path)) for start, path in headers)
        return self

    def __getnewargs__(self) -> tuple[Any, ...]:  # pickling (Ray workers) keeps the headings
        return (self[0], self[1], self.headers)


def document_headers(document: Any) -> tuple[Header, ...]:
    """The headings a document input carries (none for a plain ``(text, sentences)`` pair)."""
    return tuple(getattr(document, "headers", ()))


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
