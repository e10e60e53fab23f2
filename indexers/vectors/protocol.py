"""``VectorIndex``, the old name of the vector backend protocol (kept importable).

Why: a backend whose files live in the index directory used to meet a protocol
of its own that added save and load to ``VectorStore``. Every backend now owns
its whole lifecycle behind :class:`~hybridctx.indexers.vectors.backend.VectorBackend`.
"""

from __future__ import annotations

from hybridctx.indexers.vectors.backend import VectorBackend

__all__ = ["VectorIndex"]

VectorIndex = VectorBackend
