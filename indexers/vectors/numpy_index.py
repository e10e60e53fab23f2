"""An exact inner-product vector index in numpy, for installs without FAISS.

Why: ``pip install hybridctx`` without an extra must index and retrieve. Exact
search over unit vectors is one matrix product, which numpy does well enough
up to a few hundred thousand landmarks, a few times slower than FAISS ``Flat``
(measured: docs/benchmarks.md#vector-backend-internals). The files are the FAISS index's own, less
``vectors.faiss``: ``vectors.npy`` (the exact vectors FAISS keeps beside its
index too), ``vector_ids.npy`` and ``vectors.json`` with ``"engine": "numpy"``.
So an index written with FAISS opens here (its exact copy is searched, every
kind then answers as ``Flat``), and an index written here opens with FAISS
(which builds its index from the vectors): see :mod:`local_vectors`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hybridctx.errors import IndexCorruptError, InputError
from hybridctx.indexers.vectors.backend import local_facts
from hybridctx.indexers.vectors.faiss_index import IDS_FILE, META_FILE, VECTORS_FILE, _normalise, _pad, _top_k, checked_new
from hybridctx.indexers.vectors.store_registry import StoreSpec
from hybridctx.indexers.vectors.vector_buffer import BufferedVectors, VectorBuffer

__all__ = ["ENGINE", "NumpyVectorIndex", "read_vector_files"]

logger = logging.getLogger(__name__)

ENGINE = "numpy"
_QUERY_BLOCK = 64  # queries scored per matrix product, so a batch's score matrix stays small


class NumpyVectorIndex(BufferedVectors):
    """A :class:`~hybridctx.indexers.vectors.backend.VectorBackend` that searches exactly with numpy.

    Args:
        dim: vector dimension.
        kind: the kind asked for (kept in ``vectors.json`` so that a FAISS
            install later builds that kind); search is always exact.
        options: FAISS tuning options (``nprobe``, ``ef_search``, ``rerank``,
            ``use_gpu``), accepted and ignored: exact search has none.
    """

    def __init__(self, dim: int, kind: str = "Flat", **options: Any) -> None:
        if dim <= 0:
            from hybridctx.errors import ConfigError

            raise ConfigError(f"vector dimension must be positive, got {dim}")
        self._dim = int(dim)
        self._kind = str(kind).strip()
        self._rerank = int(options.get("rerank") or 4)
        self._buffer = VectorBuffer(self._dim)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def factory(self) -> str:
        """What searches here: always the exact scan (FAISS ``Flat``)."""
        return "Flat"

    @property
    def spec(self) -> StoreSpec:
        """``StoreSpec()``: the vectors live in the index directory."""
        return StoreSpec()

    def describe(self) -> dict[str, Any]:
        """See :meth:`VectorBackend.describe`; ``engine`` is ``"numpy"`` (what the manifest has recorded)."""
        return local_facts(self, {"engine": ENGINE})

    def __repr__(self) -> str:
        return f"NumpyVectorIndex(dim={self._dim}, kind={self._kind!r}, n={len(self)})"

    def add(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str = "") -> None:
        """Adds vectors under new ids (as :meth:`FaissVectorIndex.add`).

        Raises:
            InputError: shapes disagree, ids repeat, are negative or already present.
        """
        ids, x = checked_new(self._buffer, ids, vectors, self._dim)
        if len(ids):
            self._buffer.add(ids, x)

    def remove(self, ids: np.ndarray) -> int:
        """Removes ``ids`` ``(m,) int64``; unknown ids are ignored. Returns how many were removed."""
        return int(len(self._buffer.remove(np.asarray(ids, dtype=np.int64).reshape(-1))))

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None, *,
               doc_ids: Sequence[str] | None = None, below: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by exact inner product, as :meth:`FaissVectorIndex.search` (``doc_ids``, ``below`` unused).

        Returns:
            ``scores`` ``(q, k) float32`` descending and ``ids`` ``(q, k) int64``,
            padded with ``-inf`` / ``-1``.
        """
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        q = _normalise(queries, self._dim, "queries")
        if len(self) == 0:
            return _pad(len(q), k)
        if allowed_ids is not None:
            ids = np.unique(np.asarray(allowed_ids, dtype=np.int64).reshape(-1))
            ids = ids[self._buffer.contains(ids)]
            if len(ids) == 0:
                return _pad(len(q), k)
            x = self._buffer.get(ids)
        else:
            ids, x = self._buffer.live()
        parts = [_top_k(q[i : i + _QUERY_BLOCK] @ x.T, ids, k) for i in range(0, len(q), _QUERY_BLOCK)]
        return np.concatenate([s for s, _ in parts]), np.concatenate([i for _, i in parts])

    # -- persistence ----------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Writes ``vectors.npy``, ``vector_ids.npy`` and ``vectors.json`` into ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        ids, x = self._buffer.live()
        np.save(path / VECTORS_FILE, np.ascontiguousarray(x, dtype=np.float32), allow_pickle=False)
        np.save(path / IDS_FILE, np.ascontiguousarray(ids, dtype=np.int64), allow_pickle=False)
        meta = {"engine": ENGINE, "kind": self._kind, "factory": "Flat", "dim": self._dim,
                "metric": "inner_product", "rerank": self._rerank, "count": int(len(ids))}
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return [VECTORS_FILE, IDS_FILE, META_FILE]

    def saved(self, next_row: int) -> None:
        """Nothing to finish: the files :meth:`save` wrote are the whole index."""

    def close(self) -> None:
        """Nothing to release (the vectors are memory or a read-only map). Idempotent."""

    def drop(self) -> None:
        """Nothing outside the index directory to delete."""

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = False, **_: Any) -> NumpyVectorIndex:
        """Reads the exact vectors of an index saved here or by FAISS (any kind).

        Raises:
            IndexCorruptError: a file is unreadable or the vectors disagree with the ids.
        """
        meta, ids, x = read_vector_files(Path(path), mmap=mmap)
        self = cls(meta["dim"], meta["kind"], rerank=meta.get("rerank"))
        self._buffer = VectorBuffer(meta["dim"], ids, x)
        return self


def read_vector_files(path: Path, *, mmap: bool = False) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """``vectors.json``, ``vector_ids.npy`` ``(n,) int64`` and ``vectors.npy`` ``(n, dim) float32``.

    Raises:
        IndexCorruptError: a file is unreadable or they disagree.
    """
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        meta["dim"], meta["kind"] = int(meta["dim"]), str(meta["kind"])
        ids = np.load(path / IDS_FILE, allow_pickle=False)
        x = np.load(path / VECTORS_FILE, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"vector files in '{path}' are unreadable: {exc}") from exc
    dim = meta["dim"]
    if x.dtype != np.float32 or x.ndim != 2 or x.shape != (len(ids), dim) or ids.dtype != np.int64:
        raise IndexCorruptError(f"'{path / VECTORS_FILE}' does not match '{IDS_FILE}' and dimension {dim}")
    return meta, ids, x
