"""Where landmark vectors live: FAISS, PostgreSQL/pgvector, Qdrant, BM25, the tables, saving them.

Installed as ``hybridctx.indexers``. Importing it loads neither faiss, bm25s,
jieba, psycopg nor qdrant-client; each is imported on first use.
"""

from __future__ import annotations

from hybridctx.indexers.vectors.external_vectors import ExternalVectors
from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex
from hybridctx.indexers.landmark_store import LandmarkStore, UpdatePlan
from hybridctx.indexers.lexical.bm25 import LexicalIndex, TokenizerSettings, lexical_tokens
from hybridctx.indexers.persistence import check_encoder, read_manifest, recover, write_index_dir
from hybridctx.indexers.vectors.pgvector_store import PgVectorStore
from hybridctx.indexers.vectors.protocol import VectorIndex
from hybridctx.indexers.vectors.qdrant_store import QdrantStore
from hybridctx.indexers.vectors.store_protocol import ExternalStore, StoreKind, VectorStore
from hybridctx.indexers.vectors.store_registry import StoreSpec
from hybridctx.indexers.tables import DocumentTables, LandmarkArrays

__all__ = [
    "DocumentTables",
    "ExternalStore",
    "ExternalVectors",
    "FaissVectorIndex",
    "LandmarkArrays",
    "LandmarkStore",
    "LexicalIndex",
    "PgVectorStore",
    "QdrantStore",
    "StoreKind",
    "StoreSpec",
    "TokenizerSettings",
    "UpdatePlan",
    "VectorIndex",
    "VectorStore",
    "check_encoder",
    "lexical_tokens",
    "read_manifest",
    "recover",
    "write_index_dir",
]
