"""Builds a vector backend from a spec, and opens the one a saved index directory names.

Why: which class holds the vectors (FAISS, the on-disk IVF, numpy, an external
engine) is decided in one place, from what the caller asked for (a
:class:`StoreSpec` and a kind string) or from what the manifest recorded, and
never by a class that swaps itself. A saved directory is opened without
running code from it: local vectors are ``.npy`` and FAISS files, and an
engine's location passes the trust check of :meth:`StoreSpec.from_manifest`
first (:mod:`store_trust`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from hybridctx.indexers.vectors.backend import VectorBackend
from hybridctx.indexers.vectors.external_vectors import ExternalVectors
from hybridctx.indexers.vectors.faiss_index import AUTO_KIND
from hybridctx.indexers.vectors.local_vectors import create_local_vectors, load_local_vectors
from hybridctx.indexers.vectors.store_registry import StoreSpec

__all__ = ["create_backend", "load_backend"]


def create_backend(spec: StoreSpec | None, dim: int, kind: str = AUTO_KIND, *, nprobe: int | None = None,
                   ef_search: int | None = None, use_gpu: bool | None = None) -> VectorBackend:
    """An empty backend for a new index.

    Args:
        spec: where the vectors live; ``None`` or ``StoreSpec()``: in the index directory.
        dim: vector dimension.
        kind: for vectors in the index directory, a FAISS factory string or ``auto``;
            a kind ending in ``,OnDisk`` is the on-disk IVF; without FAISS, numpy
            (exact kinds only). An external engine uses its own HNSW index and
            ignores ``kind`` and the FAISS options.
        nprobe, ef_search, use_gpu: see :class:`FaissVectorIndex`.

    Raises:
        ConfigError: a bad kind or option.
        MissingDependencyError: the kind needs FAISS, or the engine's client is missing.
        IndexStoreError: the engine cannot be reached.
    """
    if spec is not None and spec.external:
        return ExternalVectors.create(spec, dim)
    return create_local_vectors(dim, kind, nprobe=nprobe, ef_search=ef_search, use_gpu=use_gpu)


def load_backend(path: str | os.PathLike[str], manifest: Mapping[str, Any] | None = None, *,
                 store_url: str | None = None, mmap: bool = False, use_gpu: bool | None = None) -> VectorBackend:
    """The backend a saved index directory's manifest names.

    Args:
        path: the index directory.
        manifest: its manifest, already read and checked (default: read it, without hashing).
        store_url: an engine's location instead of the manifest's (default
            ``$HYBRIDCTX_STORE_URL``, else the manifest's, if trusted).
        mmap, use_gpu: for vectors in the directory, see :class:`FaissVectorIndex`.

    Raises:
        IndexCorruptError: the vector files or the manifest's entries are unreadable.
        UntrustedStoreError: the manifest names a local engine directory this user did not write.
        IndexStoreError, MissingDependencyError: the engine is unusable.
    """
    directory = Path(path)
    if manifest is None:
        from hybridctx.indexers.persistence import read_manifest

        manifest = read_manifest(directory, verify=False)
    spec = StoreSpec.from_manifest(manifest.get("store"), store_url, index_dir=directory)
    if spec.external:
        return ExternalVectors.load(directory, spec=spec, manifest=manifest)
    return load_local_vectors(directory, mmap=mmap, use_gpu=use_gpu)
