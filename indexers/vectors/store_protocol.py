"""What an external engine (PostgreSQL + pgvector, Qdrant, a plug-in) must offer.

Why: :class:`~hybridctx.indexers.vectors.external_vectors.ExternalVectors` is
the one :class:`~hybridctx.indexers.vectors.backend.VectorBackend` of every
engine: it keeps the engine consistent with the index directory that names it
(adds at once, removals after the save, searches bounded by the saved
``next_row``). What it needs from an engine is :class:`VectorEngine`: rows
tagged with their document, deletes, a filtered search. A third-party engine
implements only this and registers under the entry-point group
``hybridctx.stores``.

Ids are landmark rows (int64, never reused); vectors are L2-normalised, scores
are inner products, so every engine ranks the same way.

Old names, kept importable: ``ExternalStore`` is :class:`VectorEngine`;
``VectorStore`` is :class:`~hybridctx.indexers.vectors.backend.VectorBackend`.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

from hybridctx.indexers.vectors.backend import VectorBackend

__all__ = ["BackendName", "ExternalStore", "StoreKind", "VectorEngine", "VectorStore"]

#: The built-in backends (``--store``): ``faiss`` keeps vectors in the index directory, the others in an engine.
BackendName = Literal["faiss", "pgvector", "qdrant"]
StoreKind = BackendName
VectorStore = VectorBackend


@runtime_checkable
class VectorEngine(Protocol):
    """A database engine holding one vector per landmark row, tagged with its document.

    Implementations: :class:`~hybridctx.indexers.vectors.pgvector_store.PgVectorStore`,
    :class:`~hybridctx.indexers.vectors.qdrant_store.QdrantStore`. Third-party engines
    register a connector ``(spec, dim, *, create) -> VectorEngine`` under the entry-point
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


ExternalStore = VectorEngine
