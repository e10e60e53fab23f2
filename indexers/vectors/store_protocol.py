"""The vector-store protocols: what the landmark store needs from wherever vectors live.

Why two: :class:`VectorStore` is the small contract the landmark store programs
against; :class:`FaissVectorIndex` meets it as it is (in memory, saved into the
index directory). :class:`ExternalStore` is what a database engine (PostgreSQL
+ pgvector, Qdrant) must offer so that
:class:`~hybridctx.indexers.vectors.external_vectors.ExternalVectors` can turn it into a
:class:`VectorStore` whose vectors live outside the index directory while the
tables and BM25 stay inside it.

Ids are landmark rows (int64, never reused); vectors are L2-normalised, scores
are inner products, so every store ranks the same way.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["ExternalStore", "StoreKind", "VectorStore"]

#: The built-in stores: ``faiss`` keeps vectors in the index directory, the others in an engine.
StoreKind = Literal["faiss", "pgvector", "qdrant"]


@runtime_checkable
class VectorStore(Protocol):
    """Inner-product top-k over unit vectors keyed by int64 ids (FAISS meets it)."""

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def __len__(self) -> int:
        """Number of live vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Adds new ids ``(n,) int64`` with ``vectors`` ``(n, dim) float32``; all or nothing."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Removes ``ids`` ``(m,) int64``; returns how many were present."""
        ...

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``scores`` ``(q, k) float32`` descending and ``ids`` ``(q, k) int64``, padded with -inf / -1."""
        ...


@runtime_checkable
class ExternalStore(Protocol):
    """A database engine holding one vector per landmark row, tagged with its document.

    Implementations: :class:`~hybridctx.indexers.vectors.pgvector_store.PgVectorStore`,
    :class:`~hybridctx.indexers.vectors.qdrant_store.QdrantStore`. Third-party engines
    register a factory ``(spec, dim, create) -> ExternalStore`` under the entry-point
    group ``hybridctx.stores``.

    Optional: ``finish_bulk_load() -> None``, called after each save, builds what
    loading deferred (pgvector creates a new table's HNSW index there).
    """

    kind: str
    #: Optional: ``True`` when no other process can write while this one is open
    #: (Qdrant local mode); searches then skip the guard against others' unsaved rows.
    exclusive: bool

    @property
    def dim(self) -> int:
        ...

    def count(self) -> int:
        """Vectors held by the engine (live or not yet cleaned up)."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str) -> None:
        """Inserts the vectors of one document atomically: after an error none of them is visible.

        Args:
            ids: ``(n,) int64`` new rows.
            vectors: ``(n, dim) float32``, L2-normalised.
            doc_id: the document they belong to (filtered on by :meth:`search`).
        """
        ...

    def delete(self, ids: np.ndarray) -> None:
        """Deletes ``ids`` ``(m,) int64``; unknown ids are ignored (idempotent)."""
        ...

    def delete_from(self, first_id: int) -> None:
        """Deletes every id ``>= first_id`` (left by an update that never saved)."""
        ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        doc_ids: Sequence[str] | None = None,
        below: int | None = None,
        exclude: np.ndarray | None = None,
        exact: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product among ids ``< below``, not in ``exclude``, of ``doc_ids``.

        Returns:
            ``scores`` ``(q, k) float32`` descending and ``ids`` ``(q, k) int64``,
            padded with ``-inf`` / ``-1``.
        """
        ...

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        """Stored ``(m, dim) float32`` vectors of ``ids``, in order (KeyError if one is missing)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Connection facts for the manifest (never a password or API key)."""
        ...

    def close(self) -> None:
        ...

    def drop(self) -> None:
        """Deletes the table or collection and everything in it."""
        ...
