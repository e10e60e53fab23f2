"""The one protocol every vector backend meets: add, search, remove, save, load, close, describe.

Why: the landmark store keeps its tables, its BM25 index and its vectors in
step, and must not care where the vectors live. Each backend owns its whole
lifecycle behind :class:`VectorBackend`: FAISS (every kind, ``auto``
included, :class:`~hybridctx.indexers.vectors.faiss_index.FaissVectorIndex`),
the on-disk IVF (:class:`~hybridctx.indexers.vectors.ondisk_ivf.OnDiskIVFIndex`),
the numpy fallback of a bare install
(:class:`~hybridctx.indexers.vectors.numpy_index.NumpyVectorIndex`) and the
external engines, pgvector and Qdrant, through
:class:`~hybridctx.indexers.vectors.external_vectors.ExternalVectors` (which
keeps an engine consistent with the index directory that names it). What
differs between them is said by the backend itself, never found out with
``isinstance``: which rows a search may see (``below``), what a save leaves to
finish once the directory is in place (:meth:`VectorBackend.saved`), what the
manifest records (:meth:`VectorBackend.describe`).

Which backend is built from a spec, and which class reads a saved directory,
is decided once, by :mod:`~hybridctx.indexers.vectors.factory`.

Ids are landmark rows (int64, never reused); vectors are L2-normalised and
scores are inner products, so every backend ranks the same way.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from hybridctx.indexers.vectors.store_registry import StoreSpec

__all__ = ["DESCRIBE_KEYS", "VectorBackend", "manifest_entries"]

#: Keys every :meth:`VectorBackend.describe` answer has.
DESCRIBE_KEYS = ("backend", "kind", "dim", "count", "metric", "location")
METRIC = "inner_product"
#: ``describe()`` keys that are not written into the manifest's ``index`` entry.
_NOT_IN_INDEX_ENTRY = ("count", "location", "engine_info")


@runtime_checkable
class VectorBackend(Protocol):
    """Inner-product top-k over unit vectors keyed by int64 landmark rows, with its own lifecycle."""

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    @property
    def kind(self) -> str:
        """The kind asked for: a FAISS factory string (``"auto"``, ``"HNSW32"``, ...) or the engine's name."""
        ...

    @property
    def spec(self) -> StoreSpec:
        """How this backend was chosen (``StoreSpec()``: in the index directory)."""
        ...

    def __len__(self) -> int:
        """Number of live vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str = "") -> None:
        """Adds new ids ``(n,) int64`` with ``vectors`` ``(n, dim) float32``; all or nothing.

        ``doc_id`` is the document they belong to (engines tag rows with it to filter on).
        """
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Removes ``ids`` ``(m,) int64``; returns how many were present."""
        ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        *,
        doc_ids: Sequence[str] | None = None,
        below: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product.

        Args:
            queries: ``(q, dim) float32`` (one ``(dim,)`` query is accepted).
            k: results per query, >= 1.
            allowed_ids: ``(m,) int64``: only these rows (the rows of ``doc_ids``).
            doc_ids: the same restriction by document, for engines that filter on a tag.
            below: rows ``>= below`` are unknown to the caller's tables (another
                writer's, not yet saved); backends holding only the caller's rows ignore it.

        Returns:
            ``scores`` ``(q, k) float32`` descending and ``ids`` ``(q, k) int64``, padded with -inf / -1.
        """
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored ``(m, dim) float32`` unit vectors of ``ids``, in order (``KeyError`` if one is missing)."""
        ...

    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Writes this backend's files into the index directory being saved; returns their names."""
        ...

    def saved(self, next_row: int) -> None:
        """Called once the saved directory is in place (its tables' ``next_row``): finish what the save deferred."""
        ...

    @classmethod
    def load(cls, path: str | os.PathLike[str], **options: Any) -> VectorBackend:
        """Reads the backend saved in the index directory ``path``. Never runs code from it."""
        ...

    def close(self) -> None:
        """Releases connections and work files; idempotent. A closed backend is not used again."""
        ...

    def drop(self) -> None:
        """Deletes what this backend keeps outside the index directory (an engine's table or
        collection), e.g. when building a new index failed; nothing for files in the directory."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts for the manifest and ``hybridctx info``, never a secret.

        Always :data:`DESCRIBE_KEYS`: ``backend`` (``faiss`` or the engine), ``kind``,
        ``dim``, ``count`` (live vectors), ``metric`` and ``location`` (``None`` inside
        the index directory, else the redacted URL or directory); then what the manifest's
        ``index`` entry records of this backend (``factory``, ``engine``) and, for an
        external engine, ``engine_info`` (its table or collection and settings).
        """
        ...


def manifest_entries(backend: VectorBackend) -> dict[str, dict[str, Any]]:
    """The manifest's ``index`` and ``store`` entries of ``backend`` (format of DESIGN.md, unchanged).

    ``index``: ``backend``, ``kind``, ``dim``, ``metric`` and the optional ``factory``
    (what ``auto`` chose) and ``engine`` (``"numpy"``); ``store``: the spec's entry
    (kind, redacted URL, name, options, trust tag) and, for an engine, ``engine``.
    """
    facts = backend.describe()
    index = {key: value for key, value in facts.items() if key not in _NOT_IN_INDEX_ENTRY}
    store = backend.spec.to_manifest()
    if facts.get("engine_info") is not None:
        store["engine"] = dict(facts["engine_info"])
    return {"index": index, "store": store}


def local_facts(backend: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:meth:`VectorBackend.describe` of a backend whose files live in the index directory."""
    facts: dict[str, Any] = {"backend": "faiss", "kind": backend.kind, "dim": backend.dim, "count": len(backend),
                             "metric": METRIC, "location": None}
    factory = getattr(backend, "factory", backend.kind)
    if factory != backend.kind:
        facts["factory"] = factory
    facts.update(extra or {})
    return facts
