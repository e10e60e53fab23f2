"""What an indexing run will send to an encoder that bills by the token, before it starts.

Why: with an embeddings API every window costs money, so ``hybridctx index``
shows the tokens and the price before the first request and refuses a job
over its ``--max-usd`` (:func:`hybridctx.cli.checks.check_spend`). The estimate walks the same path indexing takes
(documents, skipping unchanged ones; landmarks; the encoder's window plan) and
counts what the vector cache already holds as free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

__all__ = ["estimate_indexing"]


def estimate_indexing(paths: Sequence[str | Path], index_dir: str | Path, encoder: Any, *,
                      skip_bad: bool = False) -> Any | None:
    """The :class:`~hybridctx.embeddings.pooled.PooledEstimate` of indexing ``paths``
    into ``index_dir`` with ``encoder``, or ``None`` for an encoder that cannot estimate.

    Raises:
        DocumentError: a file is unusable (as indexing would raise).
    """
    if not hasattr(encoder, "estimate"):
        return None
    from hybridctx.ingest.documents import load_documents
    from hybridctx.ingest.indexing import _max_landmark_tokens
    from hybridctx.ingest.landmarks import landmarks_for

    index_dir = Path(index_dir)
    store = None
    if (index_dir / "manifest.json").exists():
        from hybridctx.indexers import LandmarkStore

        store = LandmarkStore.load(index_dir, verify=False)
    try:
        max_tokens = _max_landmark_tokens(encoder)
        inputs = []
        for doc in load_documents(list(paths), skip_bad=skip_bad, errors=[]):
            if store is not None and doc.doc_id in store.documents_to_update([(doc.doc_id, doc.content_hash)]).unchanged:
                continue
            offsets, _ = encoder.token_offsets(doc.text)
            item = landmarks_for(doc, offsets, max_tokens)
            inputs.append((doc.text, item.sentences))
    finally:
        if store is not None:
            store.close()
    return encoder.estimate(inputs)

