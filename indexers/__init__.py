"""Where landmark vectors live: vector backends (FAISS, pgvector, Qdrant), BM25, the tables, saving them.

Installed as ``hybridctx.indexers``. Importing it loads neither faiss, bm25s,
jieba, psycopg nor qdrant-client; each is imported on first use. The names
used here (backend, engine, spec, index kind, landmark store) are defined in
docs/architecture.md, "Names".
"""

from __future__ import annotations

from hybridctx.indexers.landmark_store import LandmarkStore, UpdatePlan
from hybridctx.indexers.lexical.bm25 import LexicalIndex, TokenizerSettings, lexical_tokens
from hybridctx.indexers.persistence import check_encoder, read_manifest, recover, write_index_dir
from hybridctx.indexers.tables import DocumentTables, LandmarkArrays
from hybridctx.indexers.vectors.backend import VectorBackend
from hybridctx.indexers.vectors.external_vectors import ExternalVectors
from hybridctx.indexers.vectors.factory import create_backend, load_backend
from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex
from hybridctx.indexers.vectors.numpy_index import NumpyVectorIndex
from hybridctx.indexers.vectors.ondisk_ivf import OnDiskIVFIndex
from hybridctx.indexers.vectors.pgvector_store import PgVectorStore
from hybridctx.indexers.vectors.protocol import VectorIndex
from hybridctx.indexers.vectors.qdrant_store import QdrantStore
from hybridctx.indexers.vectors.store_protocol import BackendName, ExternalStore, StoreKind, VectorEngine, VectorStore
from hybridctx.indexers.vectors.store_registry import StoreSpec

__all__ = [
    "BackendName",
    "DocumentTables",
    "ExternalStore",
    "ExternalVectors",
    "FaissVectorIndex",
    "LandmarkArrays",
    "LandmarkStore",
    "LexicalIndex",
    "NumpyVectorIndex",
    "OnDiskIVFIndex",
    "PgVectorStore",
    "QdrantStore",
    "StoreKind",
    "StoreSpec",
    "TokenizerSettings",
    "UpdatePlan",
    "VectorBackend",
    "VectorEngine",
    "VectorIndex",
    "VectorStore",
    "check_encoder",
    "create_backend",
    "lexical_tokens",
    "load_backend",
    "read_manifest",
    "recover",
    "write_index_dir",
]
