"""A second hop: search again with the question plus the passage the first search found best.

Why: a bridge question ("Which office did the actress who played Corliss Archer
hold?") names only the first passage; the second one (the actress's own page)
shares no words with the question, only with the first passage (her name). So
the best first-hop passage is appended to the question and searched again, as
multi-hop dense retrieval does (the query is the question with the passage
before it), and the new ranking joins the fusion with its own weight. Nothing in
it knows a dataset: it uses the passage's words, whatever they are.
"""

from __future__ import annotations

from typing import Callable

from hybridctx.retrieval.spans import GrowthRule, SentenceTable, grow_spans

__all__ = ["hop_query", "seed_span"]


def seed_span(doc_id: str, ordinal: int, sentences_of: Callable[[str], SentenceTable],
              rule: GrowthRule) -> tuple[int, int]:
    """``(start, end)`` chars of the span the best hit grows into, grown as every hit is."""
    span = grow_spans([(doc_id, ordinal, 1.0)], sentences_of, rule)[0]
    return span.sentences[0][0], span.sentences[-1][1]


def hop_query(query: str, passage: str, max_words: int) -> str:
    """The second hop's query: the question, then at most ``max_words`` words of the passage."""
    words = passage.split()
    return f"{query}\n{' '.join(words[:max_words])}"
