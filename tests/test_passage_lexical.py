"""BM25 over the passage each landmark ends: where passages start, and what the ranking finds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hybridctx.datatypes import Document
from hybridctx.errors import ConfigError
from hybridctx.retrieval.passage_lexical import passage_starts, passage_texts
from hybridctx.retrieval.retriever import RetrievalConfig, Retriever


def test_passages_hold_at_most_the_sentences_and_tokens_asked_for() -> None:
    tokens = np.array([10, 50, 20, 30, 100, 5])
    assert passage_starts(tokens, 2, 0).tolist() == [0, 0, 1, 2, 3, 4]
    # 64 tokens: 10+50 fits, 50+20 does not, 20+30 does, a 100-token sentence stands alone.
    assert passage_starts(tokens, 8, 64).tolist() == [0, 0, 2, 2, 4, 5]
    assert passage_starts(tokens, 1, 0).tolist() == list(range(6))
    assert passage_starts(np.zeros(0, np.int64), 4, 64).tolist() == []
    # A passage never reaches back past the start of its run of equal section (or paragraph) codes.
    assert passage_starts(np.full(6, 10), 4, 0, np.array([0, 0, 1, 1, 1, 0])).tolist() == [0, 0, 2, 2, 2, 5]


_CHAT = "\n".join([
    "Maya: The guitar shop on the corner closed.",
    "Jon: I finally drove down to Nashville.",
    "Jon: There I bought a vintage guitar from a pawn shop.",
    "Maya: My old guitar broke again yesterday.",
    "Maya: The weather is lovely today.",
    "Maya: Jon never liked Nashville.",
    "Jon: I walked the dog this morning.",
    "Maya: Which guitar strings last longest?",
])
_QUERY = "Which guitar did Jon buy in Nashville?"


def _chat_store(encoder: Any, docs: list[Document]) -> Any:
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents

    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents(docs, store, encoder, show_progress=False)
    return store


def _row_of(store: Any, doc_id: str, words: str) -> int:
    text = store.text(doc_id)
    marks = store.landmarks_of(doc_id)
    at = text.index(words)
    return int(next(r for r, s, e in zip(marks.rows, marks.starts, marks.ends) if s <= at < e))


def test_the_turn_that_ends_the_matching_passage_ranks_first(encoder) -> None:
    """No single turn holds guitar, Jon and Nashville; the turn that closes the two that do ranks first."""
    store = _chat_store(encoder, [Document("chat", _CHAT)])
    bought = _row_of(store, "chat", "vintage guitar")
    cfg = RetrievalConfig(passage_weight=1.0, passage_sentences=2, header_weight=0.0)
    retriever = Retriever(store, encoder, cfg)
    passages = dict(passage_texts(store, retriever.documents, 2))
    assert "down to Nashville" in passages[bought] and "vintage guitar" in passages[bought]
    assert retriever._passage_rows(_QUERY, None, cfg, 10)[0] == bought
    bare = RetrievalConfig(mode="lexical", header_weight=0.0)
    assert Retriever(store, encoder, bare)._lexical_rows(_QUERY, None, bare, 10)[0] != bought  # one sentence is not enough
    best = retriever.candidates(_QUERY, budget=512)[0]
    text = store.text("chat")
    assert "vintage guitar" in text[best.start:best.end]
    timings: dict = {}
    retriever.candidates(_QUERY, budget=512, timings=timings)
    assert "passage_search" in timings  # beside the dense ranking it runs ...
    lexical_only: dict = {}
    retriever.candidates(_QUERY, budget=512, mode="lexical", timings=lexical_only)
    assert "passage_search" not in lexical_only  # ... with BM25 alone it does not


def test_the_passage_ranking_follows_a_changed_store(encoder) -> None:
    store = _chat_store(encoder, [Document("chat", _CHAT)])
    cfg = RetrievalConfig(passage_weight=1.0, passage_sentences=2, header_weight=0.0)
    retriever = Retriever(store, encoder, cfg)
    built = retriever._passage_rows(_QUERY, None, cfg, 5)  # builds the passage index
    assert len(built) and retriever._passages[1] is not None
    before = retriever._passages[1]
    from hybridctx.ingest.indexing import index_documents

    index_documents([Document("later", "Ana: I sailed to Lisbon.\nAna: We ate grilled sardines at the harbour.")],
                    store, encoder, show_progress=False)
    found = retriever._passage_rows("Where did Ana eat sardines in Lisbon?", None, cfg, 5)
    assert retriever._passages[1] is not before  # rebuilt for the changed store, not the stale one
    assert found[0] == _row_of(store, "later", "grilled sardines")


@pytest.mark.parametrize("changes, message", [
    ({"passage_weight": -1.0}, "passage_weight"),
    ({"passage_weight": float("nan")}, "passage_weight"),
    ({"passage_sentences": 0}, "passage_sentences"),
    ({"passage_sentences": 2.0}, "passage_sentences"),
    ({"passage_tokens": -1}, "passage_tokens"),
])
def test_passage_settings_are_checked(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RetrievalConfig(**changes)
