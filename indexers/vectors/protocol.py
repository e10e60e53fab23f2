"""The protocol of a vector index that saves itself into the index directory.

Why: :class:`~hybridctx.indexers.vectors.store_protocol.VectorStore` is all the landmark
store needs to search; an index kept *inside* the index directory (FAISS, the
on-disk IVF) must also save and load itself with the directory's atomic save.
External engines (pgvector, Qdrant) keep their vectors elsewhere and only meet
``VectorStore``.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from hybridctx.indexers.vectors.store_protocol import VectorStore

__all__ = ["VectorIndex"]


@runtime_checkable
class VectorIndex(VectorStore, Protocol):
    """A :class:`VectorStore` whose files live in the index directory."""

    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Writes the index into directory ``path``; returns the file names written."""
        ...

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VectorIndex:
        """Reads an index written by :meth:`save` from directory ``path``."""
        ...
