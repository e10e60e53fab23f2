"""Which class holds the vectors kept inside an index directory: FAISS, its on-disk IVF, or numpy.

Why: FAISS comes with ``hybridctx[cpu]`` / ``[gpu]``; a bare install searches
exactly with :class:`NumpyVectorIndex` instead, and a kind ending in
``,OnDisk`` keeps its lists and vectors on disk (:class:`OnDiskIVFIndex`). The
choice is made here, once per index opened or created, and logged at INFO
with its reason (never silently); the classes themselves never swap. Both
engines read each other's directories: FAISS rebuilds its index from
``vectors.npy`` when ``vectors.faiss`` is absent, numpy searches
``vectors.npy`` of a FAISS-written index of any kind.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from hybridctx.errors import MissingDependencyError
from hybridctx.indexers.vectors.faiss_index import AUTO_KIND, INDEX_FILE, FaissVectorIndex, is_exact_kind
from hybridctx.indexers.vectors.numpy_index import NumpyVectorIndex, read_vector_files
from hybridctx.indexers.vectors.ondisk_ivf import OnDiskIVFIndex, is_on_disk_kind, saved_on_disk

__all__ = ["create_local_vectors", "faiss_available", "load_local_vectors"]

logger = logging.getLogger(__name__)

_HINT = "pip install 'hybridctx[cpu]' (or [gpu]) brings FAISS"
LocalVectors = FaissVectorIndex | NumpyVectorIndex


def faiss_available() -> bool:
    """Whether ``import faiss`` would find the package (nothing is imported)."""
    try:
        return importlib.util.find_spec("faiss") is not None
    except (ImportError, ValueError):  # a None or spec-less entry in sys.modules: blocked on purpose
        return False


def create_local_vectors(dim: int, kind: str, **options: Any) -> LocalVectors:
    """An empty vector index of ``kind``: on-disk IVF for ``...,OnDisk``, FAISS when installed, else exact numpy.

    Raises:
        MissingDependencyError: FAISS is missing and ``kind`` is neither
            ``auto`` nor exact (an HNSW, IVF or on-disk kind needs FAISS).
        ConfigError: a bad ``kind`` or option (FAISS).
    """
    if faiss_available():
        if is_on_disk_kind(kind):
            return OnDiskIVFIndex(dim, kind, **options)
        return FaissVectorIndex(dim, kind, **options)
    if kind.strip() != AUTO_KIND and not is_exact_kind(kind):
        raise MissingDependencyError("faiss", "cpu", f"index kind {kind!r}")
    logger.info("faiss is not installed: vectors are searched exactly with numpy (%s)", _HINT)
    return NumpyVectorIndex(dim, kind, **options)


def load_local_vectors(path: str | os.PathLike[str], *, mmap: bool = False,
                       use_gpu: bool | None = None) -> LocalVectors:
    """The vector index saved in ``path`` by any of the three classes.

    Raises:
        IndexCorruptError: the vector files are unreadable or disagree.
    """
    path = Path(path)
    has_faiss_file = (path / INDEX_FILE).is_file()
    if faiss_available():
        if has_faiss_file and saved_on_disk(path):
            return OnDiskIVFIndex.load(path, mmap=mmap, use_gpu=use_gpu)
        if has_faiss_file:
            return FaissVectorIndex.load(path, mmap=mmap, use_gpu=use_gpu)
        meta, ids, x = read_vector_files(path, mmap=mmap)
        logger.info("index at %s was written without FAISS; building its %s FAISS index from the exact "
                    "vectors (%d)", path, meta["kind"], len(ids))
        index = create_local_vectors(meta["dim"], meta["kind"], rerank=int(meta.get("rerank") or 4),
                                     use_gpu=use_gpu)
        index.add(ids, x)
        return index
    logger.info("faiss is not installed: the %s index at %s is searched exactly with numpy over its stored "
                "vectors (%s)", "FAISS" if has_faiss_file else "numpy", path, _HINT)
    return NumpyVectorIndex.load(path, mmap=mmap)
