"""Retriever: how many hits each search takes, and that a large budget gets a larger pool."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hybridctx.datatypes import Document
from hybridctx.errors import ConfigError
from hybridctx.retrieval.retriever import RetrievalConfig, Retriever


def test_candidates_grow_with_the_budget() -> None:
    cfg = RetrievalConfig()
    # Budgets up to 2,048 keep the 100 hits the small-budget results were tuned with.
    assert [cfg.candidates_for(b) for b in (None, 0, 256, 512, 1024, 2048)] == [100] * 6
    assert cfg.candidates_for(2049) == 101
    assert [cfg.candidates_for(b) for b in (4096, 6144, 8192)] == [200, 300, 400]
    assert RetrievalConfig(candidates_per_ktoken=0).candidates_for(8192) == 100
    assert RetrievalConfig(candidates=300).candidates_for(4096) == 300
    assert RetrievalConfig(candidates=300).candidates_for(8192) == 400


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_candidates_per_ktoken_is_validated(value: float) -> None:
    with pytest.raises(ConfigError, match="candidates_per_ktoken"):
        RetrievalConfig(candidates_per_ktoken=value)


def test_span_caps_by_share_and_by_tokens_take_the_larger_so_the_cap_grows_with_the_budget() -> None:
    assert RetrievalConfig(max_span_share=None, max_span_tokens=None).span_cap(2048) is None
    assert RetrievalConfig(max_span_share=0.25, max_span_tokens=None).span_cap(2048) == 512
    assert RetrievalConfig(max_span_tokens=384, max_span_share=None).span_cap(2048) == 384
    # The default: 384 tokens up to a 1,536-token budget, a quarter of it above.
    assert [RetrievalConfig().span_cap(b) for b in (512, 1024, 1536, 2048, 4096)] == [384, 384, 384, 512, 1024]
    assert RetrievalConfig(max_span_tokens=384, max_span_share=0.25).span_cap(1024) == 384
    assert RetrievalConfig(max_span_tokens=384, max_span_share=0.25).span_cap(4096) == 1024


@pytest.mark.parametrize("value", [0, -5])
def test_max_span_tokens_is_validated(value: int) -> None:
    with pytest.raises(ConfigError, match="max_span_tokens"):
        RetrievalConfig(max_span_tokens=value)


class _Recording:
    """A landmark store that records how many hits each search asks for."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.asked: list[tuple[str, int]] = []

    def search_dense(self, queries: Any, k: int, doc_ids: Any = None) -> Any:
        self.asked.append(("dense", k))
        return self._store.search_dense(queries, k, doc_ids)

    def search_lexical(self, query: str, k: int, doc_ids: Any = None) -> Any:
        self.asked.append(("lexical", k))
        return self._store.search_lexical(query, k, doc_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture(scope="module")
def alice_store(encoder, alice_text: str) -> Any:
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents

    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    # The first chapters: several hundred sentences, "Alice" in well over 100 of them.
    index_documents([Document("alice", alice_text[:60_000])], store, encoder, show_progress=False)
    return store


def _pool_sentences(spans: list) -> int:
    return sum(len(s.sentences) for s in spans)


def test_a_large_budget_searches_deeper(alice_store: Any, encoder) -> None:
    store = _Recording(alice_store)
    # Sentence BM25 alone goes through the store's search (the header field scores all rows).
    retriever = Retriever(store, encoder, RetrievalConfig(header_weight=0.0))
    query = "What did Alice say to the Rabbit?"
    small = retriever.candidates(query, budget=2048)
    assert store.asked == [("dense", 100), ("lexical", 100)]
    assert retriever.candidates(query) == small  # no budget: the base count
    store.asked.clear()
    large = retriever.candidates(query, budget=8192)
    assert store.asked == [("dense", 400), ("lexical", 400)]
    # The fused pool holds more than 100 hits' worth of sentences, and more than at 2,048.
    assert _pool_sentences(large) > _pool_sentences(small)
    assert len({s.sentences[s.anchor] for s in large}) > 100


def test_retrieve_sizes_the_search_by_what_the_reserve_leaves(alice_store: Any, encoder) -> None:
    store = _Recording(alice_store)
    retriever = Retriever(store, encoder, RetrievalConfig(header_weight=0.0))
    packed = retriever.retrieve("Who is the Cheshire Cat?", 8192, reserve=4096)
    assert store.asked == [("dense", 200), ("lexical", 200)]
    assert packed.tokens <= 8192 - 4096
    store.asked.clear()
    packed = retriever.retrieve("Who is the Cheshire Cat?", 1024)
    assert store.asked == [("dense", 100), ("lexical", 100)] and packed.tokens <= 1024


def test_a_token_cap_trims_every_packed_span_and_keeps_more_of_them(alice_store: Any, encoder) -> None:
    query = "What did Alice say to the Rabbit?"
    free_cfg = RetrievalConfig(header_weight=0.0, max_span_tokens=None, max_span_share=None)
    free = Retriever(alice_store, encoder, free_cfg).retrieve(query, 2048)
    capped = Retriever(alice_store, encoder, replace(free_cfg, max_span_tokens=64)).retrieve(query, 2048)
    assert max(s.tokens for s in free.spans) > 64  # the cap has something to cut
    # Selection uses per-sentence counts; BPE is not exactly additive across joins (one token off at most).
    assert all(s.tokens <= 64 + 1 for s in capped.spans)
    assert any(s.trimmed for s in capped.spans)
    assert len(capped.spans) > len(free.spans)


def test_cached_document_text_follows_a_replaced_document(encoder) -> None:
    # Texts and sentence tables are cached across queries; replacing a document must not serve the old one.
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents

    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents([Document("d", "The first version. It talks about apples.")], store, encoder, show_progress=False)
    retriever = Retriever(store, encoder)
    assert retriever.documents.text("d") == "The first version. It talks about apples."
    assert len(retriever.documents.sentences("d").starts) == 2
    before = store.generation
    index_documents([Document("d", "A second version entirely. Pears now. And plums.")], store, encoder,
                    show_progress=False)
    assert store.generation > before
    packed = retriever.retrieve("Which fruit now?", budget=200)  # a query refreshes the cache first
    assert "Pears" in packed.context and "apples" not in packed.context
    assert retriever.documents.text("d") == "A second version entirely. Pears now. And plums."
    assert len(retriever.documents.sentences("d").starts) == 3


def test_rows_are_located_as_the_tables_say(encoder) -> None:
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents

    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    docs = [Document(f"d{i}", " ".join(f"Sentence {j} of document {i}." for j in range(3 + i))) for i in range(4)]
    index_documents(docs, store, encoder, show_progress=False)
    gone = store.rows_for_documents(["d1"])
    store.delete_document("d1")
    index_documents([Document("d2", "Replaced. With two sentences.")], store, encoder, show_progress=False)
    retriever = Retriever(store, encoder)
    retriever.documents.refresh()
    live = np.concatenate([store.rows_for_documents([d]) for d in ("d0", "d2", "d3")])
    rows = np.random.default_rng(0).permutation(np.concatenate([live, live[:3]]))  # repeats allowed
    doc_ids, ordinals = retriever.documents.locate(rows)
    marks = store.landmarks_for_rows(rows)
    assert doc_ids == [str(d) for d in marks.doc_ids]
    np.testing.assert_array_equal(ordinals, marks.ordinals)
    assert retriever.documents.locate(gone[:1]) is None  # a deleted row: ask the tables (which raise)


def _bridge_store(encoder) -> Any:
    """A question that names only the first document; the second shares words only with the first."""
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents

    docs = [
        Document("film", "Kiss and Tell is a 1945 comedy film. Its lead role was played by Shirley Temple."),
        Document("actress", "Shirley Temple was an American actress. Later in life she served as "
                            "United States Ambassador to Ghana."),
    ] + [Document(f"other-{i}", f"The {w} harbour opened in 19{10 + i}. Fishing boats still use the {w} quay.")
         for i, w in enumerate(["northern", "southern", "eastern", "western", "old", "new"])]
    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents(docs, store, encoder, show_progress=False)
    return store


def test_a_second_hop_finds_the_document_only_the_first_one_names(encoder) -> None:
    store = _bridge_store(encoder)
    query = "Which 1945 comedy film had a famous lead role?"
    plain = Retriever(store, encoder, RetrievalConfig(mode="lexical", header_weight=0.0, second_hop_weight=0.0))
    hop = Retriever(store, encoder, RetrievalConfig(mode="lexical", header_weight=0.0, second_hop_weight=1.0))
    docs_plain = [c.doc_id for c in plain.candidates(query)]
    docs_hop = [c.doc_id for c in hop.candidates(query)]
    assert docs_plain[0] == docs_hop[0] == "film"  # the seed keeps its place
    # The actress's document shares no word with the question, only her name with the film's.
    assert "actress" not in docs_plain
    assert docs_hop[:2] == ["film", "actress"]
    timings: dict[str, float] = {}
    hop.candidates(query, timings=timings)
    assert "second_hop" in timings
    plain_timings: dict[str, float] = {}
    plain.candidates(query, timings=plain_timings)
    assert "second_hop" not in plain_timings


def test_a_second_hop_with_a_minimum_budget_runs_only_from_that_budget(encoder) -> None:
    store = _bridge_store(encoder)
    query = "Which 1945 comedy film had a famous lead role?"
    gated = Retriever(store, encoder, RetrievalConfig(mode="lexical", header_weight=0.0, second_hop_weight=1.0,
                                                      second_hop_min_budget=2048, second_hop_across_documents=False))
    small = [c.doc_id for c in gated.candidates(query, budget=1024)]
    large = [c.doc_id for c in gated.candidates(query, budget=2048)]
    assert "actress" not in small  # below the minimum: the first hop alone
    assert large[:2] == ["film", "actress"]
    unknown = [c.doc_id for c in gated.candidates(query)]
    assert unknown[0] == "film" and "actress" not in unknown  # no budget known: no hop
    cfg = gated.config
    assert (cfg.second_hop_runs(None), cfg.second_hop_runs(2047), cfg.second_hop_runs(2048)) == (False, False, True)
    assert not RetrievalConfig(second_hop_weight=0.0, second_hop_min_budget=2048).second_hop_runs(4096)  # never


def test_a_second_hop_across_documents_runs_only_for_a_search_over_several(encoder) -> None:
    store = _bridge_store(encoder)
    query = "Which 1945 comedy film had a famous lead role?"
    across = Retriever(store, encoder, RetrievalConfig(mode="lexical", header_weight=0.0, second_hop_weight=1.0,
                                                       second_hop_across_documents=True))
    corpus: dict[str, float] = {}
    assert [c.doc_id for c in across.candidates(query, timings=corpus)][:2] == ["film", "actress"]
    assert "second_hop" in corpus
    inside: dict[str, float] = {}
    across.candidates(query, ["film"], timings=inside)  # a search inside one document
    assert "second_hop" not in inside
    ungated: dict[str, float] = {}
    Retriever(store, encoder, replace(across.config, second_hop_across_documents=False)).candidates(
        query, ["film"], timings=ungated)
    assert "second_hop" in ungated


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_convex_fusion_at_the_extremes_ranks_by_one_side_s_own_scores(encoder, share: float) -> None:
    store = _bridge_store(encoder)
    query = "Which 1945 comedy film had a famous lead role?"
    cfg = RetrievalConfig(fusion="convex", convex_dense_share=share, header_weight=0.0)
    retriever = Retriever(store, encoder, cfg)
    vectors: list = []
    dense = retriever._dense_rows(query, None, 10, None, vectors)
    lexical = retriever._lexical_rows(query, None, cfg, 10)
    ranked = retriever._convex_rows(query, vectors[0], dense, lexical, cfg)
    union = np.unique(np.concatenate([dense, lexical]))
    assert sorted(ranked.tolist()) == union.tolist()
    if share == 1.0:  # the cosine of every hit, the BM25-only ones included
        cosine = store.vectors_for_rows(union) @ np.asarray(vectors[0], np.float32).reshape(-1)
        expected = union[np.lexsort((union, -cosine))]
    else:
        every = store.lexical().scores(query)
        bm25 = every[np.searchsorted(store.lexical().rows, union)]
        expected = union[np.lexsort((union, -bm25))]
        assert set(ranked[: len(lexical)].tolist()) == set(lexical.tolist())  # hits without a shared word last
    assert ranked.tolist() == expected.tolist()
    assert retriever.candidates(query, budget=1024)  # the whole path runs


@pytest.mark.parametrize("changes, message", [
    ({"fusion": "max"}, "fusion"),
    ({"convex_dense_share": 1.5}, "convex_dense_share"),
    ({"second_hop_weight": -1.0}, "second_hop_weight"),
    ({"second_hop_words": 0}, "second_hop_words"),
    ({"second_hop_searches": ("graph",)}, "second_hop_searches"),
    ({"second_hop_min_budget": -1}, "second_hop_min_budget"),
    ({"second_hop_min_budget": 2048.0}, "second_hop_min_budget"),
])
def test_second_hop_settings_are_checked(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RetrievalConfig(**changes)


def test_the_span_cap_is_lifted_for_a_question_that_asks_for_a_whole_unit(encoder) -> None:
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents
    from hybridctx.retrieval.query_hints import hints_for

    cfg = RetrievalConfig(max_span_tokens=48, max_span_share=None)
    assert cfg.span_cap(2048, hints_for("What does the third section say?")) is None
    assert cfg.span_cap(2048, hints_for("When should the pods be picked?")) == 48
    sections = "\n".join(
        f"## {n}. Part {n}\n\n" + " ".join(f"Part {n} note {i}: the beans grew a little in the garden bed." for i in range(12))
        for n in (1, 2, 3, 4))
    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents([Document("beans", "# Beans\n\n" + sections)], store, encoder, show_progress=False)
    retriever = Retriever(store, encoder, cfg)
    unit = retriever.retrieve("What does the third section say?", 1024)
    passage = retriever.retrieve("What did the notes say about the garden bed?", 1024)
    assert max(s.tokens for s in unit.spans) > 48 + 1
    assert all(s.tokens <= 48 + 1 for s in passage.spans) and any(s.trimmed for s in passage.spans)
    # A hit of sentence BM25 alone is no anchor to trim around: no cap without the dense ranking.
    lexical = retriever.retrieve("What did the notes say about the garden bed?", 1024, mode="lexical")
    assert max(s.tokens for s in lexical.spans) > 48 + 1 and not any(s.trimmed for s in lexical.spans)


def test_a_chinese_question_half_known_to_minilm_drops_the_dense_ranking(alice_store: Any, encoder) -> None:
    # MiniLM's vocabulary holds many CJK characters one by one: this question reads as half known.
    query = "黑龍江在哪一個海峽入海?"
    assert 0.4 < encoder.readable_ratio(query) < 0.8
    signals: dict[str, Any] = {}
    Retriever(alice_store, encoder).candidates(query, signals=signals)
    assert len(signals["dense"]) == 0
    lenient: dict[str, Any] = {}  # the threshold before session 13 let it through
    Retriever(alice_store, encoder, RetrievalConfig(unreadable_query_ratio=0.5)).candidates(query, signals=lenient)
    assert len(lenient["dense"]) > 0
    english: dict[str, Any] = {}
    Retriever(alice_store, encoder).candidates("Who is the Cheshire Cat?", signals=english)
    assert len(english["dense"]) > 0
