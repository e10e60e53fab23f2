"""The exact float32 copy of every landmark vector, keyed by id.

Why: FAISS indexes that compress (IVF-PQ) or cannot delete (HNSW) need the raw
vectors to re-rank candidates exactly, to rebuild after deletions and to answer
searches restricted to a few documents exactly. Keeping them here, sorted by
id in an amortised growable buffer with lazy deletion, makes every one of those
a numpy gather instead of a FAISS special case. Saved as plain ``.npy``.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["BufferedVectors", "IdKeyedRows", "VectorBuffer"]

logger = logging.getLogger(__name__)

_COMPACT_FRACTION = 0.25


class IdKeyedRows:
    """Lookup and lazy deletion shared by the in-RAM and on-disk vector buffers.

    Subclasses hold ``_ids`` ``(cap,) int64``, ``_alive`` ``(cap,) bool``, ``_n``
    stored rows and ``_dead`` of them removed, and supply :meth:`_gather` (rows
    at positions) and :meth:`compact`.
    """

    _ids: np.ndarray
    _alive: np.ndarray
    _n: int
    _dead: int

    def __len__(self) -> int:
        return self._n - self._dead

    def _id_order(self) -> np.ndarray | None:
        """``argsort`` of ``_ids[:n]``, or ``None`` when they are stored ascending."""
        return None

    def _gather(self, pos: np.ndarray) -> np.ndarray:
        """Rows at positions ``pos`` ``(m,) int64``, in that order: ``(m, dim) float32``."""
        raise NotImplementedError

    def compact(self) -> None:
        """Drops dead entries."""
        raise NotImplementedError

    # -- lookup ---------------------------------------------------------
    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Buffer positions of ``ids`` ``(m,) int64``.

        Returns:
            ``positions`` ``(m,) int64`` and ``found`` ``(m,) bool`` (present and live).
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        n = self._n
        if n == 0:
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        order = self._id_order()
        if order is None:
            pos = np.minimum(np.searchsorted(self._ids[:n], ids), n - 1)
        else:
            pos = order[np.minimum(np.searchsorted(self._ids[:n][order], ids), n - 1)]
        found = (self._ids[pos] == ids) & self._alive[pos]
        return pos.astype(np.int64), found

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """``(m,) bool``: which ``ids`` are live here."""
        return self.positions(ids)[1]

    def get(self, ids: np.ndarray) -> np.ndarray:
        """Vectors of live ``ids``: ``(m, dim) float32``; raises ``KeyError`` on unknown ids."""
        pos, found = self.positions(ids)
        if not found.all():
            missing = np.asarray(ids).reshape(-1)[~found][:5].tolist()
            raise KeyError(f"ids not in the vector store: {missing}")
        return self._gather(pos)

    # -- mutation -------------------------------------------------------
    def _new_ids(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` as ``(m,) int64``, checked to be new; compacts first if a dead copy would shadow one.

        Raises:
            ValueError: an id repeats or is already present (callers check first).
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return ids
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids given to the vector store repeat")
        pos, found = self.positions(ids)
        if found.any():
            raise ValueError(f"ids already in the vector store: {ids[found][:5].tolist()}")
        if self._dead and self._n and bool((self._ids[pos] == ids).any()):
            self.compact()  # a dead copy of a re-added id must not shadow it
        return ids

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Marks ``ids`` dead; returns the ``(r,) int64`` ids that were live, ascending."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        pos, found = self.positions(ids)
        self._alive[pos[found]] = False
        self._dead += int(found.sum())
        return ids[found]


class VectorBuffer(IdKeyedRows):
    """Id-sorted ``(n, dim) float32`` vectors with O(1) amortised append.

    Ids added in increasing order (landmark rows are) append in place; others
    trigger a re-sort. Removal only clears a live flag; storage is compacted
    when a quarter of it is dead or on :meth:`compact`.
    """

    def __init__(self, dim: int, ids: np.ndarray | None = None, vectors: np.ndarray | None = None) -> None:
        self.dim = int(dim)
        if ids is None or vectors is None:
            ids = np.empty(0, dtype=np.int64)
            vectors = np.empty((0, self.dim), dtype=np.float32)
        order = np.argsort(ids, kind="stable")
        if np.any(order != np.arange(len(ids))):
            ids, vectors = ids[order], vectors[order]
        self._ids = np.asarray(ids, dtype=np.int64)
        self._vecs = vectors  # may be a read-only memmap until the first change
        self._alive = np.ones(len(ids), dtype=bool)
        self._n = len(ids)
        self._dead = 0

    def _gather(self, pos: np.ndarray) -> np.ndarray:
        return np.take(self._vecs, pos, axis=0)

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` ``(n,) int64`` ascending and ``vectors`` ``(n, dim) float32`` of live entries."""
        if self._dead:
            self.compact()
        return self._ids[: self._n], self._vecs[: self._n]

    # -- mutation -------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Appends new ``ids`` ``(m,) int64`` and ``vectors`` ``(m, dim) float32``.

        Raises:
            ValueError: an id is already present (callers check first).
        """
        ids = self._new_ids(ids)
        m = len(ids)
        if m == 0:
            return
        self._reserve(self._n + m)
        self._ids[self._n : self._n + m] = ids
        self._vecs[self._n : self._n + m] = vectors
        self._alive[self._n : self._n + m] = True
        sorted_append = self._n == 0 or ids.min() > self._ids[self._n - 1]
        self._n += m
        if not (sorted_append and bool(np.all(np.diff(ids) > 0))):
            order = np.argsort(self._ids[: self._n], kind="stable")
            self._ids[: self._n] = self._ids[order]
            self._vecs[: self._n] = self._vecs[order]
            self._alive[: self._n] = self._alive[order]

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Marks ``ids`` dead; returns the ``(r,) int64`` ids that were live, ascending."""
        removed = super().remove(ids)
        if self._dead > _COMPACT_FRACTION * max(self._n, 1):
            self.compact()
        return removed

    def compact(self) -> None:
        """Drops dead entries and spare capacity."""
        keep = np.flatnonzero(self._alive[: self._n])
        self._ids = self._ids[keep]
        self._vecs = np.ascontiguousarray(self._vecs[keep], dtype=np.float32)
        self._alive = np.ones(len(keep), dtype=bool)
        self._n = len(keep)
        self._dead = 0

    def _reserve(self, need: int) -> None:
        cap = len(self._ids)
        writable = isinstance(self._vecs, np.ndarray) and self._vecs.flags.writeable and not isinstance(
            self._vecs, np.memmap
        )
        if need <= cap and writable:
            return
        new_cap = max(need, 2 * cap, 1024)
        ids = np.empty(new_cap, dtype=np.int64)
        vecs = np.empty((new_cap, self.dim), dtype=np.float32)
        alive = np.zeros(new_cap, dtype=bool)
        ids[: self._n] = self._ids[: self._n]
        vecs[: self._n] = self._vecs[: self._n]
        alive[: self._n] = self._alive[: self._n]
        self._ids, self._vecs, self._alive = ids, vecs, alive


class BufferedVectors:
    """What a backend that keeps its exact vectors in ``self._buffer`` answers from the buffer alone.

    Why shared: the FAISS kinds, the on-disk IVF and the numpy fallback all keep
    the exact copy in an :class:`IdKeyedRows`, so counting, listing and reading
    vectors are the same three lines for each of them.
    """

    _buffer: IdKeyedRows

    def __len__(self) -> int:
        return len(self._buffer)

    def ids(self) -> np.ndarray:
        """Live ids, ``(n,) int64`` ascending."""
        return self._buffer.live()[0].copy()

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Exact stored vectors of ``ids``: ``(m, dim) float32``, L2-normalised."""
        return self._buffer.get(np.asarray(ids, dtype=np.int64))
