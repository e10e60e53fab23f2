"""FAISS inner-product search over landmark vectors, on the GPU when there is one.

Why: one vector per landmark (sentence) quickly means millions of vectors, so the
index kind is a FAISS factory string: ``"Flat"`` (exact), ``"HNSW32"`` or
``"IVF256,PQ16"`` for large corpora, or ``"auto"`` (what indexing asks for by
default): exact ``Flat`` while the index is small, rebuilt as ``HNSW32`` from
the exact copy once it holds :attr:`FaissVectorIndex.auto_hnsw_min` vectors
on a CPU, the size from which a graph search is several times faster than a
full scan (measured: docs/benchmarks.md#query-latency, ``benchmarks/hnsw_depth.py``).
With a GPU, ``auto`` stays ``Flat``: an exact scan on the GPU is faster still. FAISS ids are the landmark rows. Kinds ending in
``,OnDisk`` are :class:`~hybridctx.indexers.vectors.ondisk_ivf.OnDiskIVFIndex`,
chosen by :mod:`~hybridctx.indexers.vectors.factory`; this class refuses them.
Beside the FAISS index an exact float32 copy of every vector is kept
(:class:`VectorBuffer`, saved as ``vectors.npy``); it makes these simple and
exact:

* deletion for every kind: Flat and IVF remove for real (batched until the next
  search), HNSW cannot, so removed ids are excluded at search time and the
  graph is rebuilt from the copy once a quarter of it is dead;
* approximate kinds fetch ``rerank * k`` candidates and re-score them exactly,
  so every kind returns true inner products (comparable across kinds and with
  lexical scores after fusion);
* searches restricted to a few documents (``allowed_ids`` up to
  ``exact_filter_max`` ids) are an exact numpy product over just those vectors,
  faster than a FAISS ``IDSelectorBatch`` scan at those sizes (measured:
  docs/benchmarks.md#vector-backend-internals) and exact even for HNSW/IVF;
  larger sets use the selector.

Kinds that need training (IVF, PQ) train on all vectors present at the first
search or save; too few vectors raise :class:`ConfigError` suggesting
``"Flat"``.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

import numpy as np

from hybridctx.errors import ConfigError, IndexCorruptError, InputError, MissingDependencyError
from hybridctx.indexers.vectors.backend import local_facts
from hybridctx.indexers.vectors.store_registry import StoreSpec
from hybridctx.indexers.vectors.vector_buffer import BufferedVectors, VectorBuffer

__all__ = ["FaissVectorIndex", "checked_new", "import_faiss", "is_exact_kind", "is_on_disk_kind"]

logger = logging.getLogger(__name__)

INDEX_FILE = "vectors.faiss"
VECTORS_FILE = "vectors.npy"
IDS_FILE = "vector_ids.npy"
META_FILE = "vectors.json"
_GPU_MAX_K = 2048  # FAISS GPU search limit on k
_FEW_QUERIES = 4  # at most this many queries search on one thread
AUTO_KIND = "auto"
_AUTO_SMALL, _AUTO_LARGE = "Flat", "HNSW32"
_HNSW_REBUILD_FRACTION = 0.25
_Index = TypeVar("_Index", bound="FaissVectorIndex")


def import_faiss() -> Any:
    """Imports faiss or raises :class:`MissingDependencyError` naming the extra."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError("faiss", "cpu", "the FAISS vector index") from exc
    return faiss


def _normalise(x: np.ndarray, dim: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise InputError(f"{what} must have shape (n, {dim}); got {x.shape}")
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def checked_new(buffer: VectorBuffer, ids: np.ndarray, vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (n,) int64, vectors (n, dim) float32 unit length)`` to add to ``buffer``, checked.

    Raises:
        InputError: shapes disagree, ids are not integers, repeat, are negative or already present.
    """
    ids = np.asarray(ids).reshape(-1)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"vector ids must be integers, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    x = _normalise(vectors, dim, "vectors")
    if len(ids) != len(x):
        raise InputError(f"{len(ids)} ids given for {len(x)} vectors")
    if len(ids) and ids.min() < 0:
        raise InputError("vector ids must be >= 0 (-1 marks missing results)")
    if len(np.unique(ids)) != len(ids):
        raise InputError("vector ids given to add() repeat")
    present = buffer.contains(ids)
    if present.any():
        raise InputError(f"vector ids already in the index: {ids[present][:5].tolist()}")
    return ids, x


def is_exact_kind(kind: str) -> bool:
    """Whether ``kind`` is an exact scan (``Flat``): what the numpy fallback can stand in for."""
    return kind.replace(" ", "") in ("Flat", "IDMap,Flat", "IDMap2,Flat")


def is_on_disk_kind(kind: str) -> bool:
    """Whether ``kind`` asks for on-disk storage (its last component is ``OnDisk``, see :mod:`ondisk_ivf`)."""
    return kind.replace(" ", "").split(",")[-1].lower() == "ondisk"


def _pad(q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((q, k), -np.inf, dtype=np.float32), np.full((q, k), -1, dtype=np.int64)


@contextmanager
def _few_threads(faiss: Any, n_queries: int) -> Iterator[None]:
    """One OpenMP thread for a handful of queries, then the previous setting.

    Why: FAISS splits even a single query over its threads, which then wait on
    each other: one thread answers a lone query faster (measured:
    docs/benchmarks.md#vector-backend-internals).
    """
    if n_queries > _FEW_QUERIES:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``k`` of ``scores`` ``(q, m)`` over ``ids`` ``(m,)`` or ``(q, m)``, padded."""
    q, m = scores.shape
    out_s, out_i = _pad(q, k)
    if m == 0:
        return out_s, out_i
    kk = min(k, m)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < m else np.tile(np.arange(m), (q, 1))
    part_s = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_s, axis=1, kind="stable")
    sel = np.take_along_axis(part, order, axis=1)
    out_s[:, :kk] = np.take_along_axis(scores, sel, axis=1)
    out_i[:, :kk] = ids[sel] if ids.ndim == 1 else np.take_along_axis(ids, sel, axis=1)
    out_i[~np.isfinite(out_s)] = -1
    return out_s, out_i


class FaissVectorIndex(BufferedVectors):
    """A :class:`~hybridctx.indexers.vectors.backend.VectorBackend` backed by FAISS, kept in the index directory.

    Args:
        dim: vector dimension.
        kind: FAISS factory string without metric (``"Flat"``, ``"HNSW32"``,
            ``"IVF256,PQ16"``, ...; the metric is always inner product), or
            ``"auto"``: Flat, turning HNSW32 at :attr:`auto_hnsw_min` vectors.
        nprobe: IVF lists probed per query (default ``min(nlist, 16)``).
        ef_search: HNSW search depth (default 64).
        rerank: approximate kinds fetch ``rerank * k`` candidates and re-score
            them exactly from the stored vectors.
        use_gpu: ``None`` uses a GPU when FAISS sees one; ``False`` never.

    Raises:
        ConfigError: unknown ``kind``, or ``use_gpu=True`` without a GPU.
        MissingDependencyError: faiss is not installed.
    """

    exact_filter_max = 40_000
    auto_hnsw_min = 20_000  # "auto" turns HNSW at this many vectors, back to Flat below half of it
    #: Whether this class keeps its lists on disk (kinds ending in ``,OnDisk``).
    on_disk = False

    def __init__(
        self,
        dim: int,
        kind: str = "Flat",
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rerank: int = 4,
        use_gpu: bool | None = None,
    ) -> None:
        faiss = import_faiss()
        if dim <= 0:
            raise ConfigError(f"vector dimension must be positive, got {dim}")
        if not self.on_disk and is_on_disk_kind(kind):
            raise ConfigError(f"index kind {kind!r} keeps its vectors on disk: build it with "
                              "hybridctx.indexers.vectors.factory.create_backend (or OnDiskIVFIndex)")
        if rerank < 1:
            raise ConfigError(f"rerank must be >= 1, got {rerank}")
        self._dim = int(dim)
        self._kind = kind.strip()
        self._factory = _AUTO_SMALL if self._kind == AUTO_KIND else self._kind
        self._rerank = int(rerank)
        self._exact = is_exact_kind(self._factory)
        self._buffer = VectorBuffer(self._dim)
        self._index = self._empty_index(faiss)
        self._configure(nprobe, ef_search)
        self._pending: list[np.ndarray] = []  # removed, not yet removed from FAISS (Flat/IVF)
        self._tombstones = np.empty(0, dtype=np.int64)  # removed, still in the HNSW graph
        self._use_gpu = use_gpu
        self._gpu: Any = None
        if use_gpu and faiss.get_num_gpus() == 0:
            raise ConfigError("use_gpu=True but FAISS sees no GPU; install faiss-gpu or pass use_gpu=None")

    # -- construction ---------------------------------------------------
    def _empty_index(self, faiss: Any) -> Any:
        metric = faiss.METRIC_INNER_PRODUCT
        try:
            index = faiss.index_factory(self._dim, self._factory, metric)
            if faiss.try_extract_index_ivf(index) is None and not self._factory.startswith("IDMap"):
                index = faiss.index_factory(self._dim, "IDMap2," + self._factory, metric)
        except RuntimeError as exc:
            raise ConfigError(
                f"FAISS cannot build index kind {self._factory!r} for dimension {self._dim}: "
                f"{str(exc).strip().splitlines()[-1]}; try 'Flat', 'HNSW32' or 'IVF256,PQ16'"
            ) from exc
        return index

    def _inner(self) -> Any:
        faiss = import_faiss()
        if isinstance(self._index, faiss.IndexIDMap):
            return faiss.downcast_index(self._index.index)
        return faiss.downcast_index(self._index)

    @property
    def _is_hnsw(self) -> bool:
        return hasattr(self._inner(), "hnsw")

    def _configure(self, nprobe: int | None, ef_search: int | None) -> None:
        faiss = import_faiss()
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None:
            ivf.nprobe = int(nprobe) if nprobe else min(int(ivf.nlist), 16)
        inner = self._inner()
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = int(ef_search) if ef_search else 64

    # -- protocol -------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        """The kind asked for (``"auto"`` included)."""
        return self._kind

    @property
    def factory(self) -> str:
        """The FAISS factory string the index is built with now (what ``"auto"`` chose)."""
        return self._factory

    @property
    def spec(self) -> StoreSpec:
        """``StoreSpec()``: the vectors live in the index directory."""
        return StoreSpec()

    def describe(self) -> dict[str, Any]:
        """See :meth:`VectorBackend.describe`; ``factory`` when ``auto`` chose another kind."""
        return local_facts(self)

    def __repr__(self) -> str:
        chosen = f" ({self._factory})" if self._factory != self._kind else ""
        return f"FaissVectorIndex(dim={self._dim}, kind={self._kind!r}{chosen}, n={len(self)})"

    def add(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str = "") -> None:
        """Adds vectors under new ids.

        Args:
            ids: ``(n,) int64``, unique, >= 0, not present yet.
            vectors: ``(n, dim) float32``; normalised here to unit length.
            doc_id: not stored (the tables know each row's document).

        Raises:
            InputError: shapes disagree, ids repeat, are negative or already present.
        """
        ids, x = checked_new(self._buffer, ids, vectors, self._dim)
        if len(ids) == 0:
            return
        if self._pending and np.isin(ids, np.concatenate(self._pending)).any():
            self._flush_removals()
        self._buffer.add(ids, x)
        if len(self._tombstones) and np.isin(ids, self._tombstones).any():
            self._rebuild()  # an id revived inside the HNSW graph: start clean
            return
        if self._index.is_trained:
            self._index.add_with_ids(x, ids)
        self._gpu = None

    def remove(self, ids: np.ndarray) -> int:
        """Removes ``ids`` ``(m,) int64``; unknown ids are ignored. Returns how many were removed."""
        removed = self._buffer.remove(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(removed) == 0:
            return 0
        if self._index.is_trained and self._index.ntotal:
            if self._is_hnsw:
                self._tombstones = np.union1d(self._tombstones, removed)
            else:
                self._pending.append(removed)
        self._gpu = None
        return int(len(removed))

    # -- maintenance ----------------------------------------------------
    def _flush_removals(self) -> None:
        if not self._pending:
            return
        faiss = import_faiss()
        gone = np.unique(np.concatenate(self._pending))
        self._pending = []
        self._index.remove_ids(faiss.IDSelectorBatch(gone))

    def _rebuild(self) -> None:
        """Builds the FAISS index again from the stored vectors (HNSW after deletions)."""
        faiss = import_faiss()
        nprobe = getattr(faiss.try_extract_index_ivf(self._index), "nprobe", None)
        inner = self._inner()
        ef = inner.hnsw.efSearch if hasattr(inner, "hnsw") else None
        self._index = self._empty_index(faiss)
        self._configure(nprobe, ef)
        self._pending, self._tombstones, self._gpu = [], np.empty(0, dtype=np.int64), None
        self._fill()

    def _fill(self) -> None:
        """Adds every stored vector to the (empty) FAISS index, training it first if needed."""
        ids, x = self._buffer.live()
        if len(ids) == 0:
            return
        if not self._index.is_trained:
            self._train(x)
        self._index.add_with_ids(x, ids)

    def _auto_factory(self) -> str:
        """What ``"auto"`` should be built as for the vectors held now."""
        if self._use_gpu is not False and import_faiss().get_num_gpus() > 0:
            return _AUTO_SMALL  # an exact scan on the GPU beats a CPU graph
        n = len(self._buffer)
        if self._factory == _AUTO_LARGE:  # hysteresis: no flapping around the threshold
            return _AUTO_LARGE if n >= self.auto_hnsw_min // 2 else _AUTO_SMALL
        return _AUTO_LARGE if n >= self.auto_hnsw_min else _AUTO_SMALL

    def _ensure_ready(self) -> None:
        """Trains (first time), applies pending removals, rebuilds a too-dead HNSW graph,
        and rebuilds an ``"auto"`` index as the kind its size calls for."""
        if self._kind == AUTO_KIND:
            wanted = self._auto_factory()
            if wanted != self._factory:
                logger.info("index of %d vectors: rebuilding as %s (kind auto)", len(self._buffer), wanted)
                self._factory, self._exact = wanted, is_exact_kind(wanted)
                self._rebuild()
                return
        if not self._index.is_trained:
            self._fill()
            return
        self._flush_removals()
        ntotal = max(int(self._index.ntotal), 1)
        if len(self._tombstones) > _HNSW_REBUILD_FRACTION * ntotal:
            logger.info("rebuilding HNSW graph: %d of %d vectors deleted", len(self._tombstones), ntotal)
            self._rebuild()

    def _train(self, x: np.ndarray) -> None:
        faiss = import_faiss()
        need = 1
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None:
            need = int(ivf.nlist)
            pq = getattr(faiss.downcast_index(ivf), "pq", None)
            if pq is not None:
                need = max(need, int(pq.ksub))
        if len(x) < need:
            raise ConfigError(
                f"index kind {self._factory!r} needs at least {need} vectors to train but only "
                f"{len(x)} were given; use kind='Flat' (exact, fine up to ~1M vectors) or a "
                "smaller IVF/PQ setting"
            )
        for part in (ivf, self._inner()):
            # Polysemous training only serves Hamming filtering, which inner-product
            # search never uses, and is ~15x slower than the rest of PQ training.
            if part is not None and getattr(faiss.downcast_index(part), "do_polysemous_training", False):
                faiss.downcast_index(part).do_polysemous_training = False
        logger.info("training FAISS %s on %d vectors", self._factory, len(x))
        try:
            self._index.train(x)
        except RuntimeError as exc:
            raise ConfigError(
                f"FAISS could not train {self._factory!r} on {len(x)} vectors: {exc}; use kind='Flat'"
            ) from exc

    def _searcher(self) -> Any:
        """The index unfiltered searches run on: a GPU copy when one is used."""
        if self._use_gpu is False or self._is_hnsw:
            return self._index
        if self._gpu is None:
            faiss = import_faiss()
            n_gpus = faiss.get_num_gpus()
            if n_gpus == 0:
                if self._use_gpu is None:
                    logger.info("FAISS sees no GPU; searching %s on the CPU", self._factory)
                    self._use_gpu = False
                return self._index
            try:
                self._gpu = faiss.index_cpu_to_all_gpus(self._index)
            except RuntimeError as exc:
                if self._use_gpu:
                    raise ConfigError(f"FAISS cannot move {self._factory!r} to the GPU: {exc}") from exc
                logger.info("FAISS cannot move %s to the GPU (%s); searching on the CPU", self._factory, exc)
                self._use_gpu = False
                return self._index
            logger.info("FAISS sees %d GPU(s); searching the %s index on them", n_gpus, self._factory)
        return self._gpu

    # -- search ---------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None, *,
               doc_ids: Sequence[str] | None = None, below: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` vectors by inner product (cosine: everything is unit length).

        Args:
            queries: ``(q, dim) float32`` (a single ``(dim,)`` query is accepted).
            k: results per query, >= 1.
            allowed_ids: ``(m,) int64``; when given only these ids are returned.
            doc_ids, below: unused: ``allowed_ids`` already restricts by document,
                and this index holds only its own tables' rows.

        Returns:
            ``scores`` ``(q, k) float32`` descending (exact inner products) and
            ``ids`` ``(q, k) int64``, padded with ``-inf`` / ``-1``.
        """
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        q = _normalise(queries, self._dim, "queries")
        if len(self) == 0:
            return _pad(len(q), k)
        if allowed_ids is not None:
            allowed = np.unique(np.asarray(allowed_ids, dtype=np.int64).reshape(-1))
            allowed = allowed[self._buffer.contains(allowed)]
            if len(allowed) == 0:
                return _pad(len(q), k)
            if len(allowed) <= self.exact_filter_max or len(allowed) <= k:
                return _top_k(q @ self._buffer.get(allowed).T, allowed, k)
        self._ensure_ready()
        faiss = import_faiss()
        inner = self._inner()
        # Exact scores come back from Flat and from HNSW over full vectors: no re-scoring.
        exact_scores = self._exact or type(inner).__name__ == "IndexHNSWFlat"
        kk = min(k if exact_scores else k * self._rerank, int(self._index.ntotal))
        depth = k * self._rerank // 2  # HNSW search depth, see _params
        keep: list[Any] = []  # selectors must outlive the search call
        if allowed_ids is not None:
            keep.append(faiss.IDSelectorBatch(allowed))
        elif len(self._tombstones):
            keep.append(faiss.IDSelectorBatch(self._tombstones))
            keep.append(faiss.IDSelectorNot(keep[0]))
        with _few_threads(faiss, len(q)):
            if keep or hasattr(inner, "hnsw"):
                params = self._params(faiss, keep[-1] if keep else None, depth)
                scores, ids = self._index.search(q, kk, params=params)
            else:
                searcher = self._searcher() if kk <= _GPU_MAX_K else self._index
                scores, ids = searcher.search(q, kk)
        if exact_scores:
            out_s, out_i = _pad(len(q), k)
            out_s[:, : scores.shape[1]], out_i[:, : ids.shape[1]] = scores, ids
            out_s[out_i < 0] = -np.inf
            return out_s, out_i
        return self._rescore(q, ids, k)

    def _params(self, faiss: Any, selector: Any, depth: int) -> Any:
        """Search parameters: the selector (or ``None``), and for HNSW a search depth of
        at least ``depth`` (``rerank * k / 2``, twice the results for the default
        rerank 4): the depth at which HNSW keeps nearly all of the exact top ``k``
        and the evidence recall of ``Flat`` (measured: the depth table in
        docs/benchmarks.md#query-latency, from ``benchmarks/hnsw_depth.py``)."""
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None:
            return faiss.SearchParametersIVF(sel=selector, nprobe=int(ivf.nprobe))
        inner = self._inner()
        if hasattr(inner, "hnsw"):
            return faiss.SearchParametersHNSW(sel=selector, efSearch=max(int(inner.hnsw.efSearch), depth))
        return faiss.SearchParameters(sel=selector)

    def _rescore(self, q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of candidate ids ``(q, kk)`` from the stored vectors."""
        scores = np.full(cand.shape, -np.inf, dtype=np.float32)
        valid = cand >= 0
        rows, _ = np.nonzero(valid)
        if len(rows):
            vecs = self._buffer.get(cand[valid])
            scores[valid] = np.einsum("ij,ij->i", vecs, q[rows])
        return _top_k(scores, cand, k)

    # -- persistence ----------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Writes ``vectors.faiss``, ``vectors.npy``, ``vector_ids.npy``, ``vectors.json`` into ``path``.

        Returns:
            The file names written.

        Raises:
            ConfigError: a kind that needs training has too few vectors.
        """
        faiss = import_faiss()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._ensure_ready()
        ids, x = self._buffer.live()
        faiss.write_index(self._index, str(path / INDEX_FILE))
        np.save(path / VECTORS_FILE, np.ascontiguousarray(x, dtype=np.float32), allow_pickle=False)
        self._write_ids_and_meta(path, ids)
        return [INDEX_FILE, VECTORS_FILE, IDS_FILE, META_FILE]

    def _write_ids_and_meta(self, path: Path, ids: np.ndarray, **extra: Any) -> None:
        """Writes ``vector_ids.npy`` (``ids`` ``(n,) int64``) and ``vectors.json`` (with ``extra`` keys)."""
        np.save(path / IDS_FILE, np.ascontiguousarray(ids, dtype=np.int64), allow_pickle=False)
        meta = {"kind": self._kind, "factory": self._factory, "dim": self._dim, "metric": "inner_product",
                "rerank": self._rerank, "count": int(len(ids)),
                "faiss_version": getattr(import_faiss(), "__version__", "unknown"), **extra}
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def saved(self, next_row: int) -> None:
        """Nothing to finish: the files :meth:`save` wrote are the whole index."""

    def close(self) -> None:
        """Drops the GPU copy; the vectors stay in memory until the index is collected. Idempotent."""
        self._gpu = None

    def drop(self) -> None:
        """Nothing outside the index directory to delete."""

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, mmap: bool = False, use_gpu: bool | None = None, **_: Any
    ) -> FaissVectorIndex:
        """Reads an index written by :meth:`save`.

        Args:
            path: the directory holding the files.
            mmap: map ``vectors.npy`` instead of reading it (copied on first change).
            use_gpu: as in the constructor.

        Raises:
            IndexCorruptError: a file is unreadable or the files disagree.
            ConfigError: the files were written by the on-disk IVF (open them with the factory).
        """
        faiss = import_faiss()
        path = Path(path)
        meta, ids, x, index = cls._read_saved(path, mmap=mmap)
        dim = meta["dim"]
        if index.d != dim:
            raise IndexCorruptError(f"'{path / INDEX_FILE}' has dimension {index.d}, expected {dim}")
        self = cls._restored(meta, index, use_gpu)
        self._buffer = VectorBuffer(dim, ids, x)
        if index.is_trained:
            if self._is_hnsw:
                in_graph = faiss.vector_to_array(index.id_map).astype(np.int64)
                self._tombstones = np.setdiff1d(in_graph, ids)
                consistent = len(in_graph) - len(self._tombstones) == len(ids)
            else:
                consistent = index.ntotal == len(ids)
            if not consistent:
                raise IndexCorruptError(
                    f"'{path / INDEX_FILE}' holds {index.ntotal} vectors but '{IDS_FILE}' {len(ids)}"
                )
        return self

    @classmethod
    def _read_index(cls, path: Path) -> Any:
        """Reads ``vectors.faiss`` in ``path``."""
        return import_faiss().read_index(str(path / INDEX_FILE))

    @classmethod
    def _read_saved(cls, path: Path, *, mmap: bool) -> tuple[dict[str, Any], np.ndarray, np.ndarray, Any]:
        """Reads the files :meth:`save` writes and checks that the vectors match the ids.

        Returns:
            ``meta`` (``vectors.json``), ``ids`` ``(n,) int64``, ``vectors`` ``(n, dim) float32``
            (memory-mapped when ``mmap``) and the FAISS index.

        Raises:
            IndexCorruptError: a file is unreadable or the vectors disagree with the ids.
        """
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError(f"{META_FILE} holds a JSON {type(meta).__name__}, not an object")
            meta["dim"], meta["kind"] = int(meta["dim"]), str(meta["kind"])
            meta["rerank"] = int(meta.get("rerank", 4))
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise IndexCorruptError(f"vector files in '{path}' are unreadable: {exc}") from exc
        if bool(meta.get("on_disk")) != cls.on_disk:
            raise ConfigError(f"the vectors in '{path}' were saved {'without' if cls.on_disk else 'with'} on-disk "
                              "lists; open them with hybridctx.indexers.vectors.factory.load_backend")
        try:
            ids = np.load(path / IDS_FILE, allow_pickle=False)
            x = np.load(path / VECTORS_FILE, allow_pickle=False, mmap_mode="r" if mmap else None)
            index = cls._read_index(path)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, RecursionError) as exc:
            raise IndexCorruptError(f"vector files in '{path}' are unreadable: {exc}") from exc
        dim = meta["dim"]
        if x.dtype != np.float32 or x.ndim != 2 or x.shape != (len(ids), dim) or ids.dtype != np.int64:
            raise IndexCorruptError(f"'{path / VECTORS_FILE}' does not match '{IDS_FILE}' and dimension {dim}")
        return meta, ids, x, index

    @classmethod
    def _restored(cls: type[_Index], meta: dict[str, Any], index: Any, use_gpu: bool | None) -> _Index:
        """A new instance around a loaded FAISS ``index``, without its vector buffer."""
        self = cls.__new__(cls)
        self._dim, self._kind, self._rerank = meta["dim"], meta["kind"], int(meta.get("rerank", 4))
        self._factory = str(meta.get("factory", self._kind))
        self._exact = is_exact_kind(self._factory)
        self._index, self._pending, self._gpu, self._use_gpu = index, [], None, use_gpu
        self._tombstones = np.empty(0, dtype=np.int64)
        return self
