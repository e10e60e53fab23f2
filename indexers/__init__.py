"""Where landmark vectors live: FAISS, BM25, the document tables, and saving them.

Installed as ``hybridctx.indexers``. Importing it loads neither faiss, bm25s nor
jieba; each is imported on first use.
"""

from __future__ import annotations

from hybridctx.indexers.faiss_index import FaissVectorIndex
from hybridctx.indexers.landmark_store import LandmarkStore, UpdatePlan
from hybridctx.indexers.lexical import LexicalIndex, TokenizerSettings, lexical_tokens
from hybridctx.indexers.persistence import check_encoder, read_manifest, recover, write_index_dir
from hybridctx.indexers.protocol import VectorIndex
from hybridctx.indexers.tables import DocumentTables, LandmarkArrays

__all__ = [
    "DocumentTables",
    "FaissVectorIndex",
    "LandmarkArrays",
    "LandmarkStore",
    "LexicalIndex",
    "TokenizerSettings",
    "UpdatePlan",
    "VectorIndex",
    "check_encoder",
    "lexical_tokens",
    "read_manifest",
    "recover",
    "write_index_dir",
]
