"""The vector-index protocol the landmark store and retrievers program against.

Why: FAISS (CPU or GPU) is the built-in backend, but scale-out stores (pgvector,
Qdrant) must be able to stand in. They only need to map int64 ids (landmark
rows) to unit vectors and answer inner-product top-k queries, optionally
restricted to a set of ids.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["VectorIndex"]


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product top-k over L2-normalised vectors keyed by int64 ids."""

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def __len__(self) -> int:
        """Number of (live) vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Adds ``ids`` ``(n,) int64`` (new, unique) with ``vectors`` ``(n, dim) float32``."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Removes ``ids`` ``(m,) int64``; returns how many were present."""
        ...

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product.

        Args:
            queries: ``(q, dim) float32``.
            k: results per query.
            allowed_ids: ``(m,) int64``; when given, only these ids can be returned.

        Returns:
            ``scores`` ``(q, k) float32`` (descending) and ``ids`` ``(q, k) int64``;
            missing results are padded with id ``-1`` and score ``-inf``.
        """
        ...

    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Writes the index into directory ``path``; returns the file names written."""
        ...

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VectorIndex:
        """Reads an index written by :meth:`save` from directory ``path``."""
        ...
