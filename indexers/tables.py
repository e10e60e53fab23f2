"""SQLite tables of documents and their landmarks (sentences).

Why: retrieval returns landmark rows; turning a row into a span needs its
document, character offsets, paragraph and token count, and the document's
exact text. SQLite keeps that in one file with an index on ``doc_id``, without
pickle, and lets a saved index be opened read-only in place. Rows are assigned
here from a counter that never goes back, so a row (which is also the vector
id) is never reused, even after deletions.

Schema::

    documents(doc_id TEXT PRIMARY KEY, title, text, metadata JSON, source,
              content_hash, n_landmarks)
    landmarks(row INTEGER PRIMARY KEY, doc_id, ordinal, start, "end",
              paragraph, tokens)          -- index on (doc_id, ordinal)
    meta(key TEXT PRIMARY KEY, value)    -- next_row, schema
    structure(doc_id TEXT PRIMARY KEY, data JSON)  -- headings, turns, pages
                                         -- (hybridctx.ingest.structure); absent in
                                         -- indexes written before it: computed
                                         -- from the text when asked, stored on
                                         -- the next update
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from hybridctx.datatypes import Document, Landmark
from hybridctx.errors import IndexCorruptError, InputError
from hybridctx.ingest.structure import DocumentStructure, extract_structure, structure_from_json

__all__ = ["DocumentTables", "LandmarkArrays"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, title TEXT, text TEXT NOT NULL, metadata TEXT NOT NULL,
    source TEXT, content_hash TEXT NOT NULL, n_landmarks INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS landmarks (
    row INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, paragraph INTEGER NOT NULL,
    tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS landmarks_doc ON landmarks (doc_id, ordinal);
""" + "CREATE TABLE IF NOT EXISTS structure (doc_id TEXT PRIMARY KEY, data TEXT NOT NULL);"
_STRUCTURE_SCHEMA = "CREATE TABLE IF NOT EXISTS structure (doc_id TEXT PRIMARY KEY, data TEXT NOT NULL);"
_COLS = 'row, doc_id, ordinal, start, "end", paragraph, tokens'
_TEMPORARY = ""  # SQLite: a private on-disk database, deleted on close


_COLUMNS = {
    "meta": ["key", "value"],
    "documents": ["doc_id", "title", "text", "metadata", "source", "content_hash", "n_landmarks"],
    "landmarks": ["row", "doc_id", "ordinal", "start", "end", "paragraph", "tokens"],
}
# Cells that would make a later query fail (a TypeError, an offset past the text): an index from
# someone else may hold anything its checksums were rewritten to match. One pass over each table.
_CELL_CHECKS = (
    ("a document cell of the wrong type",
     "SELECT COUNT(*) FROM documents WHERE typeof(doc_id) != 'text' OR typeof(text) != 'text' "
     "OR typeof(metadata) != 'text' OR typeof(content_hash) != 'text' OR typeof(n_landmarks) != 'integer' "
     "OR typeof(title) NOT IN ('text', 'null') OR typeof(source) NOT IN ('text', 'null') "
     "OR NOT json_valid(metadata) OR json_type(metadata) != 'object'"),
    # One pass over the landmarks, grouped by document, then one lookup of each document.
    ("a landmark of the wrong type, out of range or outside its document's text",
     "SELECT COUNT(*) FROM (SELECT doc_id, MAX(\"end\") AS last, COUNT(*) AS n, SUM("
     "typeof(row) != 'integer' OR typeof(doc_id) != 'text' OR typeof(ordinal) != 'integer' "
     "OR typeof(start) != 'integer' OR typeof(\"end\") != 'integer' OR typeof(paragraph) != 'integer' "
     "OR typeof(tokens) != 'integer' OR row < 0 OR ordinal < 0 OR start < 0 OR \"end\" < start "
     "OR tokens < 0 OR paragraph < 0) AS bad FROM landmarks GROUP BY doc_id) AS l "
     "LEFT JOIN documents AS d ON d.doc_id = l.doc_id WHERE l.bad OR d.doc_id IS NULL OR d.n_landmarks != l.n "
     "OR l.last > length(d.text) AND instr(d.text, char(0)) = 0"),
    ("a document whose landmark count is wrong",
     "SELECT COUNT(*) FROM documents AS d WHERE n_landmarks != 0 "
     "AND NOT EXISTS (SELECT 1 FROM landmarks AS l WHERE l.doc_id = d.doc_id)"),
)


def _bad_cells(conn: sqlite3.Connection) -> str | None:
    """What is wrong with the tables' columns or cells, or ``None``."""
    for table, columns in _COLUMNS.items():
        found = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        if found != columns:
            return f"table {table} has columns {found}, expected {columns}"
    for what, query in _CELL_CHECKS:
        count = conn.execute(query).fetchone()[0]
        if count:
            return f"{count} row(s) with {what}"
    next_row = dict(conn.execute("SELECT key, value FROM meta").fetchall()).get("next_row")
    top = conn.execute("SELECT COALESCE(MAX(row) + 1, 0) FROM landmarks").fetchone()[0]
    if not isinstance(next_row, str) or not next_row.isdigit() or len(next_row) > 18 or int(next_row) < top:
        return f"next_row {next_row!r} is not a row number past the last landmark ({top})"
    return None


@dataclass(frozen=True)
class LandmarkArrays:
    """Landmarks as parallel arrays (one entry per landmark, all of length ``n``).

    Attributes:
        rows: ``(n,) int64`` landmark rows (= vector ids).
        doc_ids: ``(n,)`` unicode strings.
        ordinals: ``(n,) int64`` sentence number within its document.
        starts: ``(n,) int64`` char offset of the sentence start.
        ends: ``(n,) int64`` char offset one past its end.
        paragraphs: ``(n,) int64`` paragraph number within its document.
        tokens: ``(n,) int64`` token count (encoder tokenizer).
    """

    rows: np.ndarray
    doc_ids: np.ndarray
    ordinals: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    paragraphs: np.ndarray
    tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def landmark(self, i: int) -> Landmark:
        """The ``i``-th entry as a :class:`Landmark`."""
        return Landmark(str(self.doc_ids[i]), int(self.ordinals[i]), int(self.starts[i]),
                        int(self.ends[i]), int(self.paragraphs[i]))

    @classmethod
    def from_records(cls, records: Sequence[tuple]) -> LandmarkArrays:
        if not records:
            z = np.empty(0, dtype=np.int64)
            return cls(z, np.empty(0, dtype=str), z, z, z, z, z)
        cols = list(zip(*records))
        ints = [np.asarray(c, dtype=np.int64) for i, c in enumerate(cols) if i != 1]
        return cls(ints[0], np.asarray(cols[1], dtype=str), *ints[1:])


class DocumentTables:
    """The ``documents`` and ``landmarks`` tables over one SQLite connection.

    Build with :meth:`create` (a temporary database, or a file); open a saved file with
    :meth:`open` (read-only in place; copied into a temporary database on the first change).
    """

    def __init__(self, conn: sqlite3.Connection, *, read_only: bool = False) -> None:
        self._conn = conn
        self._read_only = read_only
        self._has_structure_table: bool | None = None

    @classmethod
    def create(cls, path: str | os.PathLike[str] | None = None) -> DocumentTables:
        """New empty tables in a private temporary database, or in the file ``path`` (created).

        Why temporary rather than ``:memory:``: SQLite keeps a temporary database
        in its page cache and spills to a file beyond it, so indexing a corpus
        larger than RAM does not hold every document's text in memory, at a small
        cost in speed (measured: docs/benchmarks.md#vector-backend-internals).
        """
        conn = sqlite3.connect(_TEMPORARY if path is None else str(path))
        with conn:
            conn.executescript(_SCHEMA)
            conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                             [("next_row", "0"), ("schema", str(SCHEMA_VERSION))])
        return cls(conn)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> DocumentTables:
        """Opens a saved tables file read-only (never written; copied to memory on change).

        The connection may be used from any thread (retrieval from a web server's
        or LangChain's thread pool); writing stays single-threaded.

        Raises:
            IndexCorruptError: the file is not a tables file of this schema.
        """
        uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
        try:
            # Read-only and immutable, so any thread may query it: Python's sqlite3 module
            # serialises calls on one connection, and nothing here ever writes.
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            schema = dict(conn.execute("SELECT key, value FROM meta").fetchall()).get("schema")
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"'{path}' is not a readable hybridctx tables file: {exc}") from exc
        if schema != str(SCHEMA_VERSION):
            conn.close()
            raise IndexCorruptError(f"'{path}' has tables schema {schema!r}, expected {SCHEMA_VERSION}")
        try:
            problem = _bad_cells(conn)
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        if problem:
            conn.close()
            raise IndexCorruptError(f"'{path}' is not a consistent hybridctx tables file ({problem}); rebuild the index")
        return cls(conn, read_only=True)

    def close(self) -> None:
        self._conn.close()

    def backup_to(self, path: str | os.PathLike[str]) -> None:
        """Writes a consistent copy of every table to the new file ``path``."""
        dest = sqlite3.connect(str(path))
        try:
            self._conn.backup(dest)
        finally:
            dest.close()

    def _writable(self) -> sqlite3.Connection:
        if self._read_only:
            mem = sqlite3.connect(_TEMPORARY)
            self._conn.backup(mem)
            self._conn.close()
            self._conn, self._read_only = mem, False
            logger.debug("copied read-only tables into a temporary database for writing")
        return self._conn

    # -- writes ---------------------------------------------------------
    def add_document(
        self, doc: Document, landmarks: Sequence[Landmark], token_counts: Sequence[int] | np.ndarray
    ) -> np.ndarray:
        """Stores a new document and its landmarks, assigning fresh rows.

        Args:
            doc: the document (its ``doc_id`` must not be stored yet).
            landmarks: its sentences, in order.
            token_counts: ``(n,)`` tokens per landmark.

        Returns:
            ``(n,) int64`` rows assigned to ``landmarks``, ascending.

        Raises:
            InputError: the id is taken, a landmark belongs elsewhere or lies
                outside the text, counts disagree, or metadata is not JSON.
        """
        counts = np.asarray(token_counts, dtype=np.int64).reshape(-1)
        if len(counts) != len(landmarks):
            raise InputError(
                f"{len(counts)} token counts given for {len(landmarks)} landmarks of {doc.doc_id!r}"
            )
        n_chars = len(doc.text)
        for lm in landmarks:
            if lm.doc_id != doc.doc_id:
                raise InputError(f"landmark of {lm.doc_id!r} given with document {doc.doc_id!r}")
            if not 0 <= lm.start <= lm.end <= n_chars:
                raise InputError(
                    f"landmark [{lm.start}, {lm.end}) lies outside document {doc.doc_id!r} "
                    f"({n_chars} chars)"
                )
        try:
            metadata = json.dumps(dict(doc.metadata), ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InputError(f"metadata of document {doc.doc_id!r} is not JSON-serialisable: {exc}") from exc
        conn = self._writable()
        if self.has_document(doc.doc_id):
            raise InputError(f"document {doc.doc_id!r} is already stored; delete it first")
        with conn:
            first = int(conn.execute("SELECT value FROM meta WHERE key = 'next_row'").fetchone()[0])
            rows = np.arange(first, first + len(landmarks), dtype=np.int64)
            conn.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc.doc_id, doc.title, doc.text, metadata, doc.source, doc.content_hash, len(landmarks)),
            )
            conn.executemany(
                f"INSERT INTO landmarks ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(int(r), doc.doc_id, lm.ordinal, lm.start, lm.end, lm.paragraph, int(c))
                 for r, lm, c in zip(rows, landmarks, counts)],
            )
            conn.execute("UPDATE meta SET value = ? WHERE key = 'next_row'", (str(first + len(landmarks)),))
            self._store_structure(conn, doc)
        return rows

    def _store_structure(self, conn: sqlite3.Connection, doc: Document) -> None:
        """Writes the document's structure (inside the caller's transaction)."""
        data = extract_structure(doc.text, title=doc.title, metadata=doc.metadata).to_json()
        conn.execute(_STRUCTURE_SCHEMA)
        conn.execute("INSERT OR REPLACE INTO structure VALUES (?, ?)", (doc.doc_id, data))
        self._has_structure_table = True

    def ensure_structure(self, doc_id: str) -> bool:
        """Computes and stores the structure of a stored document that has none (an
        index written before structure was stored). Returns whether it wrote one."""
        if not self.has_document(doc_id) or self._structure_json(doc_id) is not None:
            return False
        doc = self.document(doc_id)
        conn = self._writable()
        with conn:
            self._store_structure(conn, doc)
        return True

    def delete_document(self, doc_id: str) -> np.ndarray:
        """Deletes a document and its landmarks; returns their ``(n,) int64`` rows (empty if absent)."""
        if not self.has_document(doc_id):
            return np.empty(0, dtype=np.int64)
        conn = self._writable()
        rows = self.rows_for([doc_id])
        with conn:
            conn.execute("DELETE FROM landmarks WHERE doc_id = ?", (doc_id,))
            conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
            if self._structure_table():
                conn.execute("DELETE FROM structure WHERE doc_id = ?", (doc_id,))
        return rows

    # -- reads ----------------------------------------------------------
    def has_document(self, doc_id: str) -> bool:
        found = self._conn.execute("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return found is not None

    def text(self, doc_id: str) -> str:
        """The exact text of a document.

        Raises:
            InputError: no such document.
        """
        row = self._conn.execute("SELECT text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            raise InputError(f"no document {doc_id!r} in the index")
        return str(row[0])

    def document(self, doc_id: str) -> Document:
        """The stored :class:`Document` (text, title, metadata, source)."""
        row = self._conn.execute(
            "SELECT doc_id, text, title, metadata, source FROM documents WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            raise InputError(f"no document {doc_id!r} in the index")
        return Document(row[0], row[1], row[2], json.loads(row[3]), row[4])

    def _structure_table(self) -> bool:
        known = self._has_structure_table
        if known is None:
            known = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'structure'").fetchone() is not None
            self._has_structure_table = known
        return known

    def _structure_json(self, doc_id: str) -> str | None:
        if not self._structure_table():
            return None
        row = self._conn.execute("SELECT data FROM structure WHERE doc_id = ?", (doc_id,)).fetchone()
        return str(row[0]) if row is not None else None

    def structure(self, doc_id: str) -> DocumentStructure:
        """The document's structure: as stored, or computed from its text when the index
        has none for it (written before structure was stored, or unreadable).

        Raises:
            InputError: no such document.
        """
        doc = self.document(doc_id)
        data = self._structure_json(doc_id)
        found = structure_from_json(data, doc.text) if data is not None else None
        if found is None:
            if data is not None:
                logger.warning("stored structure of %r is unreadable; computing it from the text", doc_id)
            found = extract_structure(doc.text, title=doc.title, metadata=doc.metadata)
        return found

    def has_structure(self, doc_id: str) -> bool:
        """Whether the structure of ``doc_id`` is stored (not only computable)."""
        return self._structure_json(doc_id) is not None

    def landmarks_of(self, doc_id: str) -> LandmarkArrays:
        """All landmarks of a document, by ordinal."""
        recs = self._conn.execute(
            f"SELECT {_COLS} FROM landmarks WHERE doc_id = ? ORDER BY ordinal", (doc_id,)
        ).fetchall()
        return LandmarkArrays.from_records(recs)

    def rows_for(self, doc_ids: Sequence[str]) -> np.ndarray:
        """``(m,) int64`` ascending rows of all landmarks of ``doc_ids`` (unknown ids contribute none)."""
        recs = self._conn.execute(
            "SELECT row FROM landmarks WHERE doc_id IN (SELECT value FROM json_each(?)) ORDER BY row",
            (json.dumps(list(doc_ids)),),
        ).fetchall()
        return np.fromiter((r[0] for r in recs), dtype=np.int64, count=len(recs))

    def landmarks_for_rows(self, rows: np.ndarray | Sequence[int]) -> LandmarkArrays:
        """Landmarks of ``rows`` ``(m,) int64``, in the order given (repeats allowed).

        Raises:
            KeyError: a row is not stored (deleted or never assigned).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        uniq = np.unique(rows)
        recs = self._conn.execute(
            f"SELECT {_COLS} FROM landmarks WHERE row IN (SELECT value FROM json_each(?)) ORDER BY row",
            (json.dumps(uniq.tolist()),),
        ).fetchall()
        if len(recs) != len(uniq):
            found = {r[0] for r in recs}
            missing = [int(r) for r in uniq if int(r) not in found][:5]
            raise KeyError(f"landmark rows not in the index: {missing}")
        got = LandmarkArrays.from_records(recs)
        pos = np.searchsorted(uniq, rows)
        return LandmarkArrays(*(getattr(got, f)[pos] for f in LandmarkArrays.__dataclass_fields__))

    def row_blocks(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Documents whose landmarks fill one block of rows in ordinal order (how
        :meth:`add_document` assigns them): ``doc_ids``, ``(d,) int64`` first rows
        ascending, and ``(d,) int64`` landmark counts. Any other document is left out."""
        recs = self._conn.execute(
            "SELECT doc_id, MIN(row), COUNT(*) FROM landmarks GROUP BY doc_id "
            "HAVING MIN(ordinal) = 0 AND MAX(row) - MIN(row) + 1 = COUNT(*) "
            "AND MIN(row - ordinal) = MAX(row - ordinal) ORDER BY MIN(row)"
        ).fetchall()
        return ([r[0] for r in recs], np.fromiter((r[1] for r in recs), np.int64, len(recs)),
                np.fromiter((r[2] for r in recs), np.int64, len(recs)))

    def hashes(self, doc_ids: Sequence[str] | None = None) -> dict[str, str]:
        """``{doc_id: content_hash}`` of every stored document, or of those of ``doc_ids`` stored (one query)."""
        if doc_ids is None:
            return dict(self._conn.execute("SELECT doc_id, content_hash FROM documents").fetchall())
        return dict(self._conn.execute(
            "SELECT doc_id, content_hash FROM documents WHERE doc_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(doc_ids)),),
        ).fetchall())

    def doc_ids(self) -> list[str]:
        """Stored document ids, sorted."""
        return [r[0] for r in self._conn.execute("SELECT doc_id FROM documents ORDER BY doc_id")]

    def summaries(self) -> list[dict[str, Any]]:
        """``{"doc_id", "title", "chars", "landmarks"}`` of every document, sorted by id (no text is read out)."""
        # SQLite's length() stops at a NUL character (JSONL may hold "\\u0000"): count those texts here.
        cur = self._conn.execute("SELECT doc_id, title, length(text), instr(text, char(0)), n_landmarks "
                                 "FROM documents ORDER BY doc_id")
        return [{"doc_id": d, "title": t, "chars": len(self.text(d)) if nul else int(c), "landmarks": int(n)}
                for d, t, c, nul, n in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        """``{"documents", "landmarks", "tokens"}`` totals."""
        docs = self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        lms, toks = self._conn.execute("SELECT COUNT(*), COALESCE(SUM(tokens), 0) FROM landmarks").fetchone()
        return {"documents": int(docs), "landmarks": int(lms), "tokens": int(toks)}

    def next_row(self) -> int:
        """The row the next landmark will get."""
        return int(self._conn.execute("SELECT value FROM meta WHERE key = 'next_row'").fetchone()[0])

    def sentences(self) -> Iterator[tuple[int, str]]:
        """Yields ``(row, sentence text)`` for every landmark, by ascending row.

        Streams from a cursor (rows are the table's key, so no sort is held),
        holding one document's text at a time: a caller that consumes as it goes
        uses memory bounded by the largest document, not by the corpus.
        """
        cur = self._conn.execute(
            "SELECT l.row, l.start, l.\"end\", l.doc_id FROM landmarks AS l ORDER BY l.row"
        )
        cache: tuple[str, str] | None = None
        for row, start, end, doc_id in cur:
            if cache is None or cache[0] != doc_id:
                cache = (doc_id, self.text(doc_id))
            yield int(row), cache[1][start:end]
