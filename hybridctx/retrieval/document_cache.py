"""What retrieval reads of a document on every query, kept between queries.

Why: a query touches a few dozen documents, and reading each one's text and
sentence table from SQLite again, query after query, was a large part of span
growth and packing on the 1M-token L-Eval index. Which document and sentence a hit's row is comes
from each document's block of rows, kept as two arrays, instead of a query
per search. Texts are kept up to a character budget, least
recently used first out; both caches are dropped whenever the store reports a
new ``generation`` (it changes when documents are added or deleted), so a
replaced document is never served stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from hybridctx.retrieval.spans import SentenceTable

__all__ = ["DocumentCache"]


class DocumentCache:
    """Document texts and sentence tables of one store, cached.

    Args:
        store: anything with ``text(doc_id)`` and ``landmarks_of(doc_id)``; an
            integer ``generation`` attribute, when present, invalidates the cache.
        max_chars: text characters kept (least recently used dropped first).
        max_tables: sentence tables kept.
    """

    def __init__(self, store: Any, max_chars: int = 64_000_000, max_tables: int = 4096) -> None:
        self._store = store
        self._max_chars = max_chars
        self._max_tables = max_tables
        self._lock = threading.Lock()
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._chars = 0
        self._tables: dict[str, SentenceTable] = {}
        self._blocks: tuple[list[str], np.ndarray, np.ndarray] | None = None
        self._generation = getattr(store, "generation", None)

    def refresh(self) -> None:
        """Forget everything if the store changed since the last call."""
        generation = getattr(self._store, "generation", None)
        if generation != self._generation:
            with self._lock:
                self._texts.clear()
                self._tables.clear()
                self._blocks = None
                self._chars = 0
                self._generation = generation

    def text(self, doc_id: str) -> str:
        """The document's text (raises what ``store.text`` raises for an unknown id)."""
        with self._lock:
            hit = self._texts.get(doc_id)
            if hit is not None:
                self._texts.move_to_end(doc_id)
                return hit
        text: str = self._store.text(doc_id)
        if len(text) <= self._max_chars:
            with self._lock:
                if doc_id not in self._texts:
                    self._texts[doc_id] = text
                    self._chars += len(text)
                    while self._chars > self._max_chars:
                        _, old = self._texts.popitem(last=False)
                        self._chars -= len(old)
        return text

    def sentences(self, doc_id: str) -> SentenceTable:
        """The document's sentence table (start/end/paragraph per landmark, in order)."""
        table = self._tables.get(doc_id)
        if table is None:
            marks = self._store.landmarks_of(doc_id)
            table = SentenceTable(marks.starts, marks.ends, marks.paragraphs)
            with self._lock:
                if len(self._tables) >= self._max_tables:
                    self._tables.clear()
                self._tables[doc_id] = table
        return table

    def locate(self, rows: np.ndarray) -> tuple[list[str], np.ndarray] | None:
        """``(doc_ids, ordinals)`` of landmark ``rows``, or ``None`` when a row lies
        outside the known blocks (or the store cannot list them): ask the store then."""
        blocks = self._blocks
        if blocks is None:
            listing = getattr(self._store, "row_blocks", None)
            if listing is None:
                return None
            blocks = self._blocks = listing()
        doc_ids, firsts, counts = blocks
        rows = np.asarray(rows, dtype=np.int64)
        where = np.searchsorted(firsts, rows, side="right") - 1
        if len(rows) and (where.min() < 0 or np.any(rows - firsts[where] >= counts[where])):
            return None
        return [doc_ids[i] for i in where.tolist()], rows - firsts[where]
