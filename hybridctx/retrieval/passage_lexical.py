"""BM25 over the passage each landmark ends: the run of sentences it closes.

Why: a question's words are often spread over neighbouring sentences or turns
(the speaker's name in one, the topic in the next), so no single sentence
matches them all, while BM25 over 256-token chunks does. Scoring each
landmark by the BM25 of the passage it ends (its own sentence and the few
before it, a real BM25 document with its own length normalisation, not a sum
of sentence scores) brings that evidence into the fusion as one more ranking
beside the sentence ranking, whose hits stay landmarks, so span growth
(which grows mostly backwards) covers the passage that matched.

A passage stays inside its paragraph by default (``RetrievalConfig.passage_within``):
passages across blank lines mixed neighbouring contract clauses and cost CUAD
questions (measured: docs/benchmarks.md#bm25-over-the-passage-a-landmark-ends-session-11).
The index is built on the first query that needs it and not saved with the
index, like the header field.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

__all__ = ["passage_index", "passage_starts", "passage_texts"]


def passage_starts(tokens: np.ndarray, sentences: int, max_tokens: int,
                   sections: np.ndarray | None = None) -> np.ndarray:
    """For each sentence of a document (in order, ``tokens`` each), the first sentence of the
    passage it ends: at most ``sentences`` sentences, and no more earlier sentences than keep the
    passage within ``max_tokens`` tokens (0: no token limit); a sentence always keeps itself.
    With ``sections`` (one code per sentence), a passage never reaches back past the start of
    its sentence's run of equal codes (a heading or session boundary)."""
    n = len(tokens)
    first = np.maximum(np.arange(n) - (sentences - 1), 0)
    if sections is not None and n:
        changed = np.concatenate([[True], sections[1:] != sections[:-1]])
        run_start = np.maximum.accumulate(np.where(changed, np.arange(n), 0))
        first = np.maximum(first, run_start)
    if max_tokens <= 0 or n == 0:
        return first
    total = np.concatenate([[0], np.cumsum(tokens)])
    # The earliest j with total[i + 1] - total[j] <= max_tokens, never later than i itself.
    fits = np.searchsorted(total, total[1:] - max_tokens, side="left")
    return np.minimum(np.maximum(first, fits), np.arange(n))


def _plan(store: Any, documents: Any, sentences: int, max_tokens: int, within: str) -> dict[int, str]:
    """``row -> passage text`` for every landmark of ``store``."""
    plan: dict[int, str] = {}
    for doc_id in store.doc_ids():
        marks = store.landmarks_of(doc_id)
        if not len(marks.rows):
            continue
        order = np.argsort(marks.ordinals, kind="stable")
        starts, ends, rows = marks.starts[order], marks.ends[order], marks.rows[order]
        sections = marks.paragraphs[order] if within == "paragraph" else None
        structure = store.structure(doc_id) if within == "section" and hasattr(store, "structure") else None
        if structure is not None:
            _, sections = np.unique([" › ".join(p) for p in structure.paths(starts.tolist(), speaker=False)],
                                    return_inverse=True)
        first = passage_starts(marks.tokens[order], sentences, max_tokens, sections).tolist()
        text = documents.text(doc_id)
        start_list, end_list = starts.tolist(), ends.tolist()
        for i, row in enumerate(rows.tolist()):
            plan[int(row)] = text[start_list[first[i]]:end_list[i]]
    return plan


def passage_texts(store: Any, documents: Any, sentences: int, max_tokens: int = 0, *,
                  within: str = "document") -> Iterator[tuple[int, str]]:
    """``(row, passage)`` for every landmark of ``store``, rows ascending: the text from the start
    of the passage's first sentence (:func:`passage_starts`) to the landmark's own end, never
    reaching back out of its ``within``: ``document``, ``paragraph`` (blank-line separated) or
    ``section`` (the landmark's header path, where the store has structure)."""
    plan = _plan(store, documents, sentences, max_tokens, within)
    for row in sorted(plan):
        yield row, plan[row]


def passage_index(store: Any, documents: Any, sentences: int, settings: Any, max_tokens: int = 0, *,
                  within: str = "document") -> Any:
    """A :class:`~hybridctx.indexers.LexicalIndex` with one entry per landmark row: the passage
    it ends (:func:`passage_texts`), tokenised with the sentence index's ``settings``."""
    from hybridctx.indexers.lexical.bm25 import LexicalIndex

    return LexicalIndex.from_sentences(passage_texts(store, documents, sentences, max_tokens, within=within),
                                       settings)
