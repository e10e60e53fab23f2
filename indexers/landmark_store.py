"""The landmark index a retriever searches: tables + vectors + BM25, saved atomically.

Why: a retriever needs one object that answers "which landmarks are closest to
this query (within these documents)?" and "what text and offsets does row r
stand for?", and that keeps the tables, the vectors and the lexical index in
step when documents are added, replaced or deleted. This module only composes
:class:`DocumentTables`, a vector backend (any
:class:`~hybridctx.indexers.vectors.backend.VectorBackend`, built or opened by
:mod:`~hybridctx.indexers.vectors.factory`) and :class:`LexicalIndex`; it
never asks which backend it holds. The durability rules live in
:mod:`persistence` (and, for vectors in an engine, :mod:`external_vectors`).

Index directory: ``manifest.json``, ``tables.sqlite``, ``lexical.*``, and the
backend's files: ``vectors.faiss``, ``vectors.npy``, ``vector_ids.npy``,
``vectors.json`` for FAISS, or ``store_pending.npy`` for an external engine
(whose kind, location and table/collection the manifest's ``store`` entry
records, without secrets).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from hybridctx.datatypes import Document, Landmark
from hybridctx.errors import ConfigError, IndexCorruptError, InputError
from hybridctx.indexers.lexical.bm25 import LexicalIndex, TokenizerSettings
from hybridctx.indexers.persistence import check_encoder, read_manifest, write_index_dir
from hybridctx.indexers.tables import DocumentTables, LandmarkArrays
from hybridctx.indexers.vectors.backend import VectorBackend, manifest_entries
from hybridctx.indexers.vectors.factory import create_backend, load_backend
from hybridctx.indexers.vectors.store_registry import StoreSpec
from hybridctx.indexers.workdirs import work_beside
from hybridctx.ingest.structure import DocumentStructure

__all__ = ["LandmarkStore", "UpdatePlan"]

logger = logging.getLogger(__name__)

TABLES_FILE = "tables.sqlite"


@dataclass(frozen=True)
class UpdatePlan:
    """Which incoming documents need (re-)indexing.

    Attributes:
        new: ids not in the index.
        changed: ids in the index whose content hash differs.
        unchanged: ids in the index with the same content hash (skip them).
    """

    new: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]

    @property
    def to_index(self) -> tuple[str, ...]:
        """``new + changed``, in the order given."""
        return self.new + self.changed


class LandmarkStore:
    """Documents, landmark vectors and BM25 over their sentences, kept in step.

    Create with :meth:`create` or :meth:`load`; not thread-safe for writes.
    """

    def __init__(
        self,
        tables: DocumentTables,
        vectors: VectorBackend,
        encoder_identity: Mapping[str, Any],
        lexical: LexicalIndex | None = None,
        lexical_settings: TokenizerSettings = TokenizerSettings(),
    ) -> None:
        self._tables = tables
        self._vectors = vectors
        self._encoder = dict(encoder_identity)
        self._lexical = lexical
        self._lexical_settings = lexical_settings
        self._generation = 0

    @property
    def generation(self) -> int:
        """Changes whenever a document is added, replaced or deleted: what callers
        that cache per-document data (texts, sentence tables) check before trusting it."""
        return self._generation

    @classmethod
    def create(
        cls,
        dim: int,
        kind: str = "Flat",
        *,
        encoder_identity: Mapping[str, Any],
        nprobe: int | None = None,
        ef_search: int | None = None,
        use_gpu: bool | None = None,
        lexical_settings: TokenizerSettings = TokenizerSettings(),
        store: StoreSpec | None = None,
    ) -> LandmarkStore:
        """An empty store held in memory until :meth:`save` (vectors in ``store``'s engine at once).

        Args:
            dim: vector dimension of the encoder.
            kind: the index kind, a FAISS factory string (``"Flat"``, ``"HNSW32"``,
                ``"IVF256,PQ16"``, ``"auto"``, ``"IVF1024,PQ32,OnDisk"``).
            encoder_identity: the encoder's identity (name, dim, pooling, ...),
                written to the manifest and checked on load.
            nprobe, ef_search, use_gpu: see :class:`FaissVectorIndex`.
            lexical_settings: BM25 tokenizer options.
            store: the spec of the backend, where vectors live (default: FAISS in the
                index directory); ``kind`` and the FAISS options apply to FAISS only.

        Raises:
            ConfigError: ``dim`` disagrees with the identity's, or a bad ``kind``.
            MissingDependencyError, IndexStoreError: the external store is unusable.
        """
        if "dim" in encoder_identity and int(encoder_identity["dim"]) != int(dim):
            raise ConfigError(f"dim={dim} but the encoder identity says dim={encoder_identity['dim']}")
        vectors = create_backend(store, dim, kind, nprobe=nprobe, ef_search=ef_search, use_gpu=use_gpu)
        return cls(DocumentTables.create(), vectors, encoder_identity, lexical_settings=lexical_settings)

    # -- properties -----------------------------------------------------
    @property
    def dim(self) -> int:
        return self._vectors.dim

    @property
    def kind(self) -> str:
        """The index kind: a FAISS factory string, or the engine's name for an external backend."""
        return self._vectors.kind

    @property
    def store(self) -> StoreSpec:
        """The backend's spec: where the vectors live (``StoreSpec().kind == "faiss"``)."""
        return self._vectors.spec

    @property
    def encoder_identity(self) -> dict[str, Any]:
        return dict(self._encoder)

    @property
    def vectors(self) -> VectorBackend:
        """The vector backend (rows are its ids)."""
        return self._vectors

    def __len__(self) -> int:
        return len(self._vectors)

    def counts(self) -> dict[str, int]:
        """``{"documents", "landmarks", "tokens"}``."""
        return self._tables.counts()

    # -- updates --------------------------------------------------------
    def documents_to_update(self, docs: Iterable[tuple[str, str]]) -> UpdatePlan:
        """Sorts ``(doc_id, content_hash)`` pairs into new / changed / unchanged.

        Reads the stored hashes of just these documents, in one query: planning a
        batch costs one indexed lookup per document, not a scan of the whole index.
        """
        docs = list(docs)
        known = self._tables.hashes([doc_id for doc_id, _ in docs])
        new: list[str] = []
        changed: list[str] = []
        unchanged: list[str] = []
        for doc_id, digest in docs:
            (new if doc_id not in known else unchanged if known[doc_id] == digest else changed).append(doc_id)
        return UpdatePlan(tuple(new), tuple(changed), tuple(unchanged))

    def add_document(
        self,
        doc: Document,
        landmarks: Sequence[Landmark],
        vectors: np.ndarray,
        token_counts: Sequence[int] | np.ndarray,
    ) -> np.ndarray:
        """Adds a document, replacing any stored document with the same id.

        Args:
            doc: the document, text exactly as given.
            landmarks: its sentences in order (``n`` of them).
            vectors: ``(n, dim) float32`` landmark vectors (normalised here).
            token_counts: ``(n,)`` tokens per landmark.

        Returns:
            ``(n,) int64`` rows of the new landmarks.

        Raises:
            InputError: shapes disagree or a landmark does not fit the document.
            IndexStoreError: the external store failed; nothing was changed.
        """
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape != (len(landmarks), self.dim):
            raise InputError(
                f"document {doc.doc_id!r}: expected vectors of shape "
                f"({len(landmarks)}, {self.dim}), got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise InputError(f"document {doc.doc_id!r}: vectors contain NaN or infinity")
        # Vectors first, under the rows the tables will assign: a store that fails
        # leaves the tables (and a replaced document) as they were.
        rows = np.arange(self._tables.next_row(), self._tables.next_row() + len(landmarks), dtype=np.int64)
        self._vectors.add(rows, x, doc.doc_id)
        try:
            if self._tables.has_document(doc.doc_id):
                self.delete_document(doc.doc_id)
            assigned = self._tables.add_document(doc, landmarks, token_counts)
        except BaseException:
            self._vectors.remove(rows)
            raise
        if not np.array_equal(assigned, rows):
            raise IndexCorruptError(f"tables assigned rows {assigned[:3]}... not {rows[:3]}...; this is a bug")
        self._lexical = None
        self._generation += 1
        return rows

    def delete_document(self, doc_id: str) -> np.ndarray:
        """Deletes a document; returns the ``(n,) int64`` rows it had (empty if absent)."""
        rows = self._tables.delete_document(doc_id)
        if len(rows):
            self._vectors.remove(rows)
            self._lexical = None
            self._generation += 1
        return rows

    # -- lookups --------------------------------------------------------
    def doc_ids(self) -> list[str]:
        return self._tables.doc_ids()

    def has_document(self, doc_id: str) -> bool:
        return self._tables.has_document(doc_id)

    def text(self, doc_id: str) -> str:
        """Exact text of a document (raises :class:`InputError` if absent)."""
        return self._tables.text(doc_id)

    def document(self, doc_id: str) -> Document:
        return self._tables.document(doc_id)

    def structure(self, doc_id: str) -> DocumentStructure:
        """Headings, turns and pages of a document (:mod:`hybridctx.ingest.structure`): stored, or
        computed from its text for an index written before structure was stored."""
        return self._tables.structure(doc_id)

    def header_paths(self, doc_id: str) -> list[tuple[str, ...]]:
        """The header path of each landmark of ``doc_id``, by ordinal
        (``("Contract", "12. GOVERNING LAW")``, ``("Session 3 (8 May, 2023)", "Caroline")``)."""
        return self.structure(doc_id).paths(self._tables.landmarks_of(doc_id).starts.tolist())

    def ensure_structure(self, doc_id: str) -> bool:
        """Stores the structure of a document that has none yet; whether it wrote one."""
        return self._tables.ensure_structure(doc_id)

    def landmarks_of(self, doc_id: str) -> LandmarkArrays:
        """All landmarks of a document, by ordinal."""
        return self._tables.landmarks_of(doc_id)

    def landmarks_for_rows(self, rows: np.ndarray | Sequence[int]) -> LandmarkArrays:
        """Landmarks of ``rows`` ``(m,) int64``, in the given order (``-1`` not allowed)."""
        return self._tables.landmarks_for_rows(rows)

    def row_blocks(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Per document, its block of landmark rows (see :meth:`DocumentTables.row_blocks`)."""
        return self._tables.row_blocks()

    def vectors_for_rows(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """Stored ``(m, dim) float32`` unit vectors of ``rows``."""
        return self._vectors.vectors(np.asarray(rows, dtype=np.int64))

    def rows_for_documents(self, doc_ids: Sequence[str]) -> np.ndarray:
        """``(m,) int64`` ascending rows of the given documents.

        Raises:
            InputError: a doc id is not in the index.
        """
        missing = [d for d in doc_ids if not self._tables.has_document(d)]
        if missing:
            shown = ", ".join(repr(d) for d in missing[:5])
            raise InputError(
                f"no document {shown} in the index; see the ids with: hybridctx info --docs --index DIR"
            )
        return self._tables.rows_for(doc_ids)

    # -- search ---------------------------------------------------------
    def search_dense(
        self, queries: np.ndarray, k: int, doc_ids: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest landmarks by inner product.

        Args:
            queries: ``(q, dim) float32`` query vectors (or one ``(dim,)``).
            k: results per query.
            doc_ids: restrict to these documents.

        Returns:
            ``scores`` ``(q, k) float32`` descending and ``rows`` ``(q, k) int64``
            (``-1`` / ``-inf`` padding).
        """
        allowed = None if doc_ids is None else self.rows_for_documents(doc_ids)
        # An engine filters by document itself and may hold rows these tables do not know yet.
        return self._vectors.search(queries, k, allowed, doc_ids=doc_ids, below=self._tables.next_row())

    def lexical(self, progress: Callable[[int], None] | None = None) -> LexicalIndex:
        """The BM25 index over every landmark sentence, built now if stale.

        The sentences stream from the tables into the builder (memory bounded by the
        vocabulary, not the corpus). ``progress`` is called with the number of
        sentences tokenised since its last call (a ``tqdm.update``); the total is
        ``counts()["landmarks"]``.
        """
        if self._lexical is None:  # bm25_build logs the counts and time
            self._lexical = LexicalIndex.from_sentences(self._tables.sentences(), self._lexical_settings,
                                                        progress=progress)
        return self._lexical

    def search_lexical(
        self, query: str, k: int, doc_ids: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 hits: ``scores`` ``(r,) float32`` descending and ``rows`` ``(r,) int64``, ``r <= k``."""
        allowed = None if doc_ids is None else self.rows_for_documents(doc_ids)
        return self.lexical().search(query, k, allowed_rows=allowed)

    # -- persistence ----------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, lexical: bool = True,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Writes the index directory atomically (a crash leaves the previous one).

        Args:
            path: the index directory, created or replaced.
            lexical: also save the BM25 index (built now if stale) so that a
                loaded index searches lexically without rebuilding.
            progress: reports the BM25 build, see :meth:`lexical`.

        Returns:
            The manifest written.

        Raises:
            ConfigError: the vector kind needs training and has too few vectors.
        """
        with work_beside(path):  # BM25 work files on the index's disk, never left in TMPDIR by a kill
            lex = self.lexical(progress) if lexical else None
        counts = self._tables.counts()
        if counts["landmarks"] != len(self._vectors):
            raise IndexCorruptError(
                f"tables hold {counts['landmarks']} landmarks but the vector index {len(self._vectors)}; "
                "this is a bug in hybridctx"
            )

        def write_files(tmp: Path) -> dict[str, Any]:
            self._tables.backup_to(tmp / TABLES_FILE)
            self._vectors.save(tmp)
            if lex is not None:
                lex.save(tmp)
            return {}

        entries = manifest_entries(self._vectors)
        extra = {
            "encoder": self._encoder,
            "index": entries["index"],
            "store": entries["store"],
            "counts": counts,
            "next_row": self._tables.next_row(),
            "lexical": {"method": "bm25", "saved": lex is not None,
                        "tokenizer": asdict(self._lexical_settings)},
        }
        manifest = write_index_dir(path, write_files, extra)
        if lex is not None:
            lex.adopt_saved(path)
        self._vectors.saved(self._tables.next_row())
        return manifest

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        expected_encoder: Mapping[str, Any] | None = None,
        *,
        verify: bool = True,
        mmap: bool = False,
        use_gpu: bool | None = None,
        store_url: str | None = None,
    ) -> LandmarkStore:
        """Opens a saved index (tables read-only in place until the first change).

        Args:
            path: the index directory.
            expected_encoder: identity of the encoder that will query; refused
                when its name, dim or pooling differ from the index's.
            verify: check every file's size and SHA-256 first.
            mmap: map ``vectors.npy`` instead of reading it into memory.
            use_gpu: see :class:`FaissVectorIndex`.
            store_url: for an external store, the URL to connect with instead of
                the manifest's (e.g. with its password); default
                ``$HYBRIDCTX_STORE_URL``, else the manifest's.

        Raises:
            IndexNotFoundError, IndexCorruptError, IndexVersionError,
            EncoderMismatchError: see :func:`read_manifest` / :func:`check_encoder`.
            IndexStoreError, MissingDependencyError: the external store is unusable.
        """
        path = Path(path)
        manifest = read_manifest(path, verify=verify, required=(TABLES_FILE,))
        if expected_encoder is not None:
            check_encoder(manifest, expected_encoder)
        tables = DocumentTables.open(path / TABLES_FILE)
        try:
            vectors = load_backend(path, manifest, store_url=store_url, mmap=mmap, use_gpu=use_gpu)
        except BaseException:
            tables.close()
            raise
        lex_info = manifest.get("lexical") or {}
        lexical = LexicalIndex.load(path) if lex_info.get("saved") else None
        counts = tables.counts()
        if counts != manifest.get("counts") or len(vectors) != counts["landmarks"]:
            tables.close()
            vectors.close()
            raise IndexCorruptError(
                f"index at '{path}/' is inconsistent: manifest counts {manifest.get('counts')}, "
                f"tables {counts}, vectors {len(vectors)}; rebuild it"
            )
        try:
            settings = TokenizerSettings(**lex_info.get("tokenizer", {}))
        except TypeError as exc:
            raise IndexCorruptError(f"index at '{path}/' has unknown lexical settings: {exc}") from exc
        logger.info("loaded index %s: %s, %s vectors", path, counts, vectors.kind)
        return cls(tables, vectors, manifest.get("encoder") or {}, lexical, settings)

    def close(self) -> None:
        """Closes the SQLite connection and the vector backend (its connection, its work files)."""
        self._tables.close()
        self._vectors.close()
