"""Vectors in an external engine, kept consistent with the index directory that names them.

Why: the tables and BM25 stay in the index directory (saved atomically by
:mod:`persistence`), the vectors live in PostgreSQL or Qdrant. Two systems
cannot commit together, so the order of writes is chosen so that a reader never
meets a row its own tables do not know, and a crash never loses a vector a
saved directory still needs:

* **adds** go to the engine at once, one document per transaction. Their rows
  are ``>= next_row`` of every saved directory, and every search is limited to
  ``id < next_row`` of the tables doing the searching, so readers of the saved
  index (other processes, other connections) do not see them;
* **removals** (deleted or replaced documents) are only remembered until the
  directory is saved, then deleted from the engine. The saved directory lists
  them in ``store_pending.npy`` in case that last step dies;
* the first write of a session cleans what a crashed session left: ids
  ``>= next_row`` and the pending removals of the last save.

So a crash at any point leaves the previous directory fully searchable, and
the next update repairs the engine. One writer per index at a time (as with
FAISS); any number of readers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hybridctx.errors import IndexCorruptError, IndexStoreError, InputError
from hybridctx.indexers.vectors.backend import METRIC
from hybridctx.indexers.vectors.faiss_index import _normalise, _top_k
from hybridctx.indexers.vectors.store_registry import StoreSpec, connect_store, redact_url

__all__ = ["ExternalVectors", "PENDING_FILE"]

logger = logging.getLogger(__name__)

PENDING_FILE = "store_pending.npy"
#: Document filters over at most this many rows are searched exactly (as FAISS does).
EXACT_FILTER_MAX = 40_000


class ExternalVectors:
    """The :class:`~hybridctx.indexers.vectors.backend.VectorBackend` of every external engine.

    Build with :meth:`create` (a new index) or :meth:`load` (a saved one).

    Args:
        engine: a :class:`~hybridctx.indexers.vectors.store_protocol.VectorEngine`
            (pgvector, Qdrant or a plug-in).
        spec: the :class:`~hybridctx.indexers.vectors.store_registry.StoreSpec` it was opened with.
        live: vectors the tables expect (their landmark count).
        next_row: the saved directory's ``next_row`` (0 for a new index).
        pending: ``(m,) int64`` removals the saved directory listed as not yet deleted.
    """

    def __init__(self, engine: Any, spec: StoreSpec, *, live: int = 0, next_row: int = 0,
                 pending: np.ndarray | None = None) -> None:
        self.engine = engine
        self.spec = spec
        self._closed = False
        self._live = int(live)
        self._next_row = int(next_row)
        self._pending = np.empty(0, np.int64) if pending is None else np.asarray(pending, np.int64)
        self._removed: list[np.ndarray] = []  # this session's removals of saved rows
        held = engine.count()
        # More vectors than the tables know: a session died before saving, or a
        # save died before deleting its removals. Exclude the latter when searching.
        self._dirty = held != self._live
        if held < self._live:
            logger.warning("the %s store holds %d vectors but the index expects %d; a newer save may have "
                           "replaced documents since this index was opened", engine.kind, held, self._live)
        self._cleaned = False

    # -- protocol -------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.engine.dim)

    @property
    def kind(self) -> str:
        return str(self.engine.kind)

    def __len__(self) -> int:
        return self._live

    def __repr__(self) -> str:
        return f"ExternalVectors({self.engine!r}, n={self._live})"

    def describe(self) -> dict[str, Any]:
        """See :meth:`VectorBackend.describe`: the location without secrets, the engine's own facts."""
        return {"backend": self.spec.kind, "kind": self.kind, "dim": self.dim, "count": self._live,
                "metric": METRIC, "location": redact_url(self.spec.url), "engine_info": self.engine.describe()}

    def add(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str = "") -> None:
        """Inserts one document's vectors in one engine transaction (nothing on error)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        x = _normalise(vectors, self.dim, "vectors")
        if len(ids) != len(x):
            raise InputError(f"{len(ids)} ids given for {len(x)} vectors")
        if len(ids) == 0:
            return
        if ids.min() < self._next_row:
            raise InputError(f"rows below {self._next_row} belong to the saved index; new rows must be fresh")
        self._clean()
        self.engine.add(ids, x, doc_id)
        self._live += len(ids)

    def remove(self, ids: np.ndarray) -> int:
        """Forgets ``ids``: new rows are deleted now, saved rows after the next save."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(ids) == 0:
            return 0
        self._clean()
        fresh = ids[ids >= self._next_row]
        if len(fresh):
            self.engine.delete(fresh)
        saved = ids[ids < self._next_row]
        if len(saved):
            self._removed.append(saved)
        self._live -= len(ids)
        return int(len(ids))

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None, *,
               doc_ids: Sequence[str] | None = None, below: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product, filtered by document in the engine.

        Args:
            queries: ``(q, dim) float32``.
            k: results per query.
            allowed_ids: the rows of ``doc_ids`` (their count picks exact search).
            doc_ids: restrict to these documents.
            below: only ids ``< below`` (the searching tables' ``next_row``).
        """
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        q = _normalise(queries, self.dim, "queries")
        exact = doc_ids is not None and allowed_ids is not None and len(allowed_ids) <= EXACT_FILTER_MAX
        if doc_ids is not None and allowed_ids is not None and len(allowed_ids) == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        if exact and getattr(self.engine, "exclusive", False) and allowed_ids is not None:
            # An in-process engine (Qdrant local mode) filters point by point in Python;
            # the documents' rows are known, so rank their vectors here, far faster
            # (measured: docs/benchmarks.md#vector-backend-internals).
            allowed = np.asarray(allowed_ids, dtype=np.int64)
            return _top_k(q @ self.engine.fetch(allowed).T, allowed, k)
        exclude = self._exclusions()
        bound = self._next_row if below is None else int(below)
        if getattr(self.engine, "exclusive", False) and not self._dirty:
            bound = None  # no other writer, no dead session's rows: nothing to filter (saves time)
        return self.engine.search(q, k, doc_ids=None if doc_ids is None else list(doc_ids), below=bound,
                                  exclude=exclude if len(exclude) else None, exact=exact)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored ``(m, dim) float32`` vectors of ``ids``."""
        return self.engine.fetch(np.asarray(ids, dtype=np.int64).reshape(-1))

    # -- consistency ----------------------------------------------------
    def _exclusions(self) -> np.ndarray:
        parts = list(self._removed) + ([self._pending] if self._dirty else [])
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def _clean(self) -> None:
        """Before the first write: drop what an unsaved session or an unfinished save left."""
        if self._cleaned:
            return
        if self._dirty:
            logger.info("cleaning the %s store: ids >= %d and %d pending removals",
                        self.kind, self._next_row, len(self._pending))
            self.engine.delete_from(self._next_row)
            if len(self._pending):
                self.engine.delete(self._pending)
            self._dirty = False
        self._cleaned = True

    def pending_removals(self) -> np.ndarray:
        """``(m,) int64`` saved rows removed (this session's, and a failed cleanup's), for the next save."""
        return self._exclusions()

    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Writes ``store_pending.npy`` into the directory being saved (the vectors are in the engine)."""
        np.save(Path(path) / PENDING_FILE, np.ascontiguousarray(self.pending_removals(), np.int64),
                allow_pickle=False)
        return [PENDING_FILE]

    def saved(self, next_row: int) -> None:
        """Call after the directory was saved: deletes the removed rows from the engine.

        Also lets the engine finish a bulk load (``finish_bulk_load``, optional: pgvector
        builds its HNSW index over a new table here), so the saved index is ready to search.
        """
        removed = self.pending_removals()
        self._next_row, self._pending, self._removed = int(next_row), removed, []
        finish = getattr(self.engine, "finish_bulk_load", None)
        if finish is not None:
            try:
                finish()
            except IndexStoreError as exc:  # the save succeeded; the first search retries
                logger.warning("index saved, but the %s store could not finish its bulk load (%s); "
                               "the first search retries", self.kind, exc)
        if len(removed) == 0:
            return
        try:
            self.engine.delete(removed)
        except IndexStoreError as exc:  # the save itself succeeded; the next update retries
            self._dirty, self._cleaned = True, False
            logger.warning("index saved, but deleting %d replaced vectors from the %s store failed (%s); "
                           "they stay excluded and the next update deletes them", len(removed), self.kind, exc)
            return
        self._pending = np.empty(0, np.int64)

    @staticmethod
    def read_pending(directory: Path) -> np.ndarray:
        path = directory / PENDING_FILE
        if not path.is_file():
            return np.empty(0, np.int64)
        try:
            pending = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"'{path}' is unreadable: {exc}") from exc
        if pending.dtype != np.int64 or pending.ndim != 1:
            raise IndexCorruptError(f"'{path}' must hold a 1-d int64 array")
        return pending

    def close(self) -> None:
        """Closes the engine's connection (idempotent)."""
        if not self._closed:
            self._closed = True
            self.engine.close()

    def drop(self) -> None:
        """Deletes the engine's table or collection and everything in it."""
        self.engine.drop()

    # -- lifecycle ------------------------------------------------------
    @classmethod
    def create(cls, spec: StoreSpec, dim: int) -> ExternalVectors:
        """Empty vectors for a new index in the engine ``spec`` names (table/collection created)."""
        return cls(connect_store(spec, dim, create=True), spec)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, spec: StoreSpec | None = None,
             manifest: Mapping[str, Any] | None = None, store_url: str | None = None,
             **_: Any) -> ExternalVectors:
        """Reconnects the vectors of the saved index directory ``path`` (its table/collection must exist).

        Args:
            path: the index directory.
            spec: where the engine is (default: from the manifest, trust-checked, see
                :meth:`StoreSpec.from_manifest`).
            manifest: the directory's manifest, already read and checked (default: read it).
            store_url: overrides the manifest's location when ``spec`` is not given.
        """
        directory = Path(path)
        if manifest is None:
            from hybridctx.indexers.persistence import read_manifest

            manifest = read_manifest(directory, verify=False)
        if spec is None:
            spec = StoreSpec.from_manifest(manifest.get("store"), store_url, index_dir=directory)
        try:
            dim = int(manifest["index"]["dim"])
            live, next_row = int(manifest["counts"]["landmarks"]), int(manifest["next_row"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"manifest of index '{directory}/' lacks {exc}; rebuild it") from exc
        engine = connect_store(spec, dim, create=False)
        return cls(engine, spec, live=live, next_row=next_row, pending=cls.read_pending(directory))


def create_vectors(spec: StoreSpec, dim: int) -> ExternalVectors:
    """:meth:`ExternalVectors.create` (the name benchmarks use)."""
    return ExternalVectors.create(spec, dim)
