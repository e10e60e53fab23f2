"""Building and updating a landmark index from documents on disk.

Why: indexing streams documents (never all in memory), skips unchanged ones
by content hash, encodes in groups so windows batch well across documents,
and writes the index atomically only after everything succeeded — a bad input
or a crash leaves the previous index as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from hybridctx.datatypes import Document
from hybridctx.ingest.documents import load_documents
from hybridctx.errors import DocumentError
from hybridctx.ingest.landmarks import DocumentLandmarks, landmarks_for

__all__ = ["IndexReport", "build_index", "index_documents"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexReport:
    """What an indexing run did, with its numbers."""

    index: str
    added: tuple[str, ...]
    replaced: tuple[str, ...]
    unchanged: tuple[str, ...]
    skipped: tuple[str, ...]
    landmarks: int
    tokens: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    encoder: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"indexed {len(self.added)} new, {len(self.replaced)} replaced, {len(self.unchanged)} unchanged"
            f"{f', {len(self.skipped)} skipped' if self.skipped else ''} document(s): "
            f"{self.landmarks} landmarks, {self.tokens} tokens in {self.seconds:.1f} s "
            f"({self.tokens_per_second:.0f} tokens/s) -> {self.index} "
            f"[{self.counts.get('documents', 0)} documents, {self.counts.get('landmarks', 0)} landmarks in all]"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "added": list(self.added), "replaced": list(self.replaced),
            "unchanged": list(self.unchanged), "skipped": list(self.skipped), "landmarks": self.landmarks,
            "tokens": self.tokens, "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 1), "counts": self.counts, "encoder": self.encoder,
        }


def index_documents(
    documents: Iterable[Document],
    store: Any,
    encoder: Any,
    *,
    group_tokens: int = 65536,
    show_progress: bool | None = None,
) -> tuple[list[str], list[str], list[str], int, int]:
    """Encode new or changed documents into ``store`` (in memory; the caller saves).

    Args:
        documents: a stream of documents.
        store: a landmark store.
        encoder: the windowed landmark encoder.
        group_tokens: documents are encoded in groups of about this many tokens.
        show_progress: tqdm bar (``None``: only on a terminal).

    Returns:
        ``(added, replaced, unchanged, landmarks, tokens)``.
    """
    from tqdm.auto import tqdm

    added: list[str] = []
    replaced: list[str] = []
    unchanged: list[str] = []
    totals = [0, 0]
    group: list[DocumentLandmarks] = []
    group_size = 0
    max_tokens = _max_landmark_tokens(encoder)
    # Headings travel with a document only to an encoder that reads them (header_prefix_tokens).
    headed = int(getattr(getattr(encoder, "config", None), "header_prefix_tokens", 0) or 0) > 0
    bar = tqdm(desc="indexing", unit="doc", disable=None if show_progress is None else not show_progress)

    def flush() -> None:
        nonlocal group, group_size
        if not group:
            return
        inputs = [_encoder_input(g, headed) for g in group]
        vectors = encoder.encode_documents(inputs, show_progress=False)
        for item, vecs in zip(group, vectors):
            existed = store.has_document(item.document.doc_id)
            store.add_document(item.document, item.landmarks, vecs, item.tokens)
            (replaced if existed else added).append(item.document.doc_id)
            totals[0] += len(item.landmarks)
            totals[1] += int(item.tokens.sum())
        bar.update(len(group))
        bar.set_postfix(tokens=totals[1])
        group, group_size = [], 0

    for doc in documents:
        # Planning reads only this document's stored hash (one indexed query).
        plan = store.documents_to_update([(doc.doc_id, doc.content_hash)])
        if doc.doc_id in plan.unchanged:
            # An index written before structure was stored gets it on its next update.
            ensure = getattr(store, "ensure_structure", None)
            if ensure is not None:
                ensure(doc.doc_id)
            unchanged.append(doc.doc_id)
            bar.update(1)
            continue
        offsets, _ = encoder.token_offsets(doc.text)
        item = landmarks_for(doc, offsets, max_tokens)
        if not item.landmarks:
            raise DocumentError(doc.source or doc.doc_id, f"document '{doc.doc_id}' has no text to index")
        group.append(item)
        group_size += len(offsets)
        if group_size >= group_tokens:
            flush()
    flush()
    bar.close()
    return added, replaced, unchanged, totals[0], totals[1]


def _encoder_input(item: DocumentLandmarks, headed: bool) -> Any:
    """``(text, sentences)``, or with ``headed`` a :class:`HeadedDocument` that also gives
    each heading's start and header path (title › sections, or the session header)."""
    doc = item.document
    if not headed:
        return (doc.text, item.sentences)
    from hybridctx.embeddings.protocol import HeadedDocument
    from hybridctx.ingest.structure import extract_structure

    structure = extract_structure(doc.text, title=doc.title, metadata=doc.metadata)
    headers = [(h.start, structure.path_at(h.start, speaker=False)) for h in structure.headings]
    return HeadedDocument(doc.text, item.sentences, headers)


def _max_landmark_tokens(encoder: Any) -> int:
    # A landmark must fit whole inside a window after the kept context.
    window = int(getattr(encoder, "window", 512))
    overlap = int(getattr(encoder, "overlap", 0))
    return max(8, min(128, (window - overlap) // 2))


def build_index(
    paths: Sequence[str | Path],
    index_dir: str | Path,
    *,
    encoder: Any,
    kind: str | None = None,
    skip_bad: bool = False,
    show_progress: bool | None = None,
    store: str | None = None,
    store_url: str | None = None,
    wait_s: float | None = None,
) -> IndexReport:
    """Index files into ``index_dir`` (created, or updated in place atomically).

    ``store`` (``faiss`` default, ``pgvector``, ``qdrant``) and ``store_url`` choose
    where a new index keeps its vectors (see :mod:`hybridctx.indexers.vectors.store_registry`);
    an existing index keeps its store, and ``store_url`` only reconnects it.

    The index's writer lock is held from before the old index is read until the
    new one is in place, so concurrent updates queue instead of losing documents;
    ``wait_s`` bounds the wait for another writer (``None``: as long as it takes,
    ``0``: fail at once with :class:`~hybridctx.errors.IndexLockedError`).
    """
    from hybridctx.indexers.workdirs import work_beside
    from hybridctx.indexers.writer_lock import writer_lock

    # Work files (BM25, on-disk IVF) beside the index, not in TMPDIR: a killed run's are swept by the next.
    with writer_lock(index_dir, wait_s=wait_s), work_beside(index_dir):
        return _build_locked(paths, Path(index_dir), encoder=encoder, kind=kind, skip_bad=skip_bad,
                             show_progress=show_progress, store=store, store_url=store_url)


def _build_locked(
    paths: Sequence[str | Path],
    index_dir: Path,
    *,
    encoder: Any,
    kind: str | None,
    skip_bad: bool,
    show_progress: bool | None,
    store: str | None,
    store_url: str | None,
) -> IndexReport:
    from hybridctx.embeddings.registry import encoder_record
    from hybridctx.errors import ConfigError
    from hybridctx.indexers import LandmarkStore
    from hybridctx.indexers.vectors.external_vectors import ExternalVectors
    from hybridctx.indexers.vectors.faiss_index import AUTO_KIND
    from hybridctx.indexers.vectors.store_registry import StoreSpec, default_location

    started = time.perf_counter()
    # The encoder's identity, and the backend and settings that build it again on open.
    identity = {**encoder.identity, **encoder_record(encoder)}
    existing = (index_dir / "manifest.json").exists() or index_dir.exists() and any(index_dir.iterdir())
    if existing:
        lm_store = LandmarkStore.load(index_dir, expected_encoder=identity, store_url=store_url)
        if store is not None and store != lm_store.store.kind:
            lm_store.close()
            raise ConfigError(f"the index at '{index_dir}' keeps its vectors in {lm_store.store.kind}, not {store}; "
                              "index into a new directory to use another store")
        if kind is not None and kind != lm_store.kind:
            logger.warning("index at %s is of kind %s; kind=%r is ignored for an update", index_dir, lm_store.kind, kind)
    else:
        if store_url and store in (None, "faiss"):
            raise ConfigError("store_url needs store='pgvector' or 'qdrant'; FAISS keeps vectors in the index")
        spec = StoreSpec(store or "faiss", store_url or default_location(store or "faiss", index_dir))
        if spec.external and kind is not None:
            logger.warning("kind=%r applies to FAISS only; the %s store uses its own HNSW index", kind, spec.kind)
        lm_store = LandmarkStore.create(encoder.dim, kind or AUTO_KIND, encoder_identity=identity, store=spec)
    try:
        errors: list[DocumentError] = []
        docs = load_documents(paths, skip_bad=skip_bad, errors=errors)
        added, replaced, unchanged, landmarks, tokens = index_documents(
            docs, lm_store, encoder, show_progress=show_progress)
        _save_with_progress(lm_store, index_dir, show_progress)
        counts = lm_store.counts()
    except BaseException:
        vectors = lm_store.vectors
        if not existing and isinstance(vectors, ExternalVectors):  # nothing names the new table: remove it
            from hybridctx.errors import IndexStoreError

            try:
                vectors.drop()
            except IndexStoreError as exc:
                logger.warning("could not remove the %s data of the failed new index: %s", lm_store.store.kind, exc)
        raise
    finally:
        lm_store.close()
    return IndexReport(
        index=str(index_dir), added=tuple(added), replaced=tuple(replaced), unchanged=tuple(unchanged),
        skipped=tuple(e.path + (f":{e.line}" if e.line else "") for e in errors), landmarks=landmarks,
        tokens=tokens, seconds=time.perf_counter() - started, counts=counts, encoder=identity,
    )


def _save_with_progress(lm_store: Any, index_dir: Path, show_progress: bool | None) -> None:
    """Save, with a bar for the BM25 build over every sentence (the long part of a save)."""
    from tqdm.auto import tqdm

    total = lm_store.counts()["landmarks"]
    with tqdm(total=total, desc="BM25", unit="sentence",
              disable=None if show_progress is None else not show_progress) as bar:
        lm_store.save(index_dir, progress=bar.update)
