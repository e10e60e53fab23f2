"""Vector backends: where landmark vectors live and are searched (FAISS kinds, on-disk IVF, numpy, pgvector, Qdrant)."""
