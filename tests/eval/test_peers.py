"""The peers: valid ranges within budget, real retrieval on a tiny corpus, and the runner."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tiers import examples

from hybridctx.eval.datasets import EvalSet, QAItem  # noqa: E402
from hybridctx.eval.peers import (  # noqa: E402
    BM25Chunks,
    LlamaIndexChunks,
    LlamaIndexSentenceWindow,
    RetrievalMethod,
    Truncation,
)
from hybridctx.eval.runner import evaluate  # noqa: E402
from hybridctx.eval.scoring import check_budget, score_question  # noqa: E402
from hybridctx.eval.units import GreedyPacker, chunk_ranges, lexical_tokens, sentence_ranges  # noqa: E402
from hybridctx.packing.tokens import get_counter  # noqa: E402

pytestmark = pytest.mark.slow

TOPICS = [
    "The lighthouse keeper polished the brass lamp every evening before sunset.",
    "Quarterly revenue rose by eleven percent thanks to strong sales in Norway.",
    "The recipe calls for two cups of flour, a pinch of salt and warm water.",
    "Migrating geese fly south in a V formation to save energy on long journeys.",
    "The court ruled that the contract terminates on the fifth anniversary of signing.",
    "Volcanic ash grounded every flight from the island for three days.",
    "The violinist tuned her instrument while the audience found their seats.",
    "A new vaccine trial enrolled four thousand volunteers across six countries.",
]
EVIDENCE = "The secret password for the vault is cerulean-otter-42, written on a yellow card."
ENGLISH = " ".join(TOPICS * 3) + " " + EVIDENCE + " " + " ".join(TOPICS[::-1] * 3)
CHINESE = "".join(
    ["长江是中国最长的河流。", "熊猫主要以竹子为食。", "北京冬天寒冷干燥。", "茶叶源于西南。"] * 6
    + ["图书馆的新馆长名叫王静怡，她来自杭州。"]
    + ["长城修建历时两千多年。", "围棋棋盘有十九条横线和十九条竖线。"] * 6
)
DOCS = {"en": ENGLISH, "zh": CHINESE, "short": "A tiny third document about nothing much."}
EN_START = ENGLISH.index(EVIDENCE)
ZH_EVIDENCE = "图书馆的新馆长名叫王静怡，她来自杭州。"
ZH_START = CHINESE.index(ZH_EVIDENCE)


@pytest.fixture(scope="module")
def counter():
    return get_counter("cl100k_base")


@pytest.fixture(scope="module")
def encoder():
    """The packaged MiniLM, loaded once for the module (cached by ``load_encoder``)."""
    from hybridctx.eval.llama_embedding import load_encoder

    return load_encoder()


@pytest.fixture(scope="module")
def peers(encoder) -> list[RetrievalMethod]:
    methods: list[RetrievalMethod] = [
        LlamaIndexChunks(64, show_progress=False),
        LlamaIndexChunks(128, backend="llamaindex", show_progress=False),
        LlamaIndexSentenceWindow(3, show_progress=False),
        BM25Chunks(64, show_progress=False),
        Truncation(),
    ]
    for method in methods:
        method.prepare(DOCS)
    return methods


def _ids(peers: Sequence[RetrievalMethod]) -> list[str]:
    return [p.name for p in peers]


@pytest.mark.parametrize("budget", [1, 20, 64, 150, 400, 5000])
@pytest.mark.parametrize("doc_ids", [["en"], ["zh"], ["en", "short"], None])
def test_ranges_are_valid_and_fit_the_budget(peers, counter, budget, doc_ids) -> None:
    for peer in peers:
        ranges = peer.retrieve("Who is the new librarian? 新馆长是谁？", doc_ids, budget)
        tokens = check_budget(ranges, DOCS, budget, counter, method=peer.name)  # bounds, overlaps, budget
        allowed = set(DOCS) if doc_ids is None else set(doc_ids)
        assert {d for d, _, _ in ranges} <= allowed, peer.name
        if budget >= sum(counter.count(DOCS[d]) for d in allowed):
            # everything fits: every peer packs all of it (truncation, and greedy fill of all units)
            assert tokens >= 0.9 * sum(counter.count(DOCS[d]) for d in allowed), peer.name
        if budget >= 150:
            assert ranges, peer.name


def test_retrieval_finds_the_evidence_at_a_small_budget(peers) -> None:
    item = QAItem("q", "en", "What is the secret password for the vault?", ((EN_START, EN_START + len(EVIDENCE)),))
    by_name = {p.name: p for p in peers}
    for name in ("llamaindex-chunks-64", "llamaindex-chunks-128", "llamaindex-window-3", "bm25-chunks-64"):
        ranges = by_name[name].retrieve(item.question, ["en"], 200)
        assert score_question(item, ranges, DOCS) == 1.0, name
    assert score_question(item, by_name["truncation"].retrieve(item.question, ["en"], 200), DOCS) == 0.0


def test_bm25_finds_chinese_evidence(peers) -> None:
    bm25 = next(p for p in peers if p.name.startswith("bm25"))
    item = QAItem("q", "zh", "图书馆的新馆长叫什么名字？", ((ZH_START, ZH_START + len(ZH_EVIDENCE)),))
    assert score_question(item, bm25.retrieve(item.question, ["zh"], 100), DOCS) == 1.0


def test_corpus_scope_searches_every_document(peers) -> None:
    for peer in peers[:4]:
        ranges = peer.retrieve("What is the secret password for the vault?", None, 200)
        assert any(d == "en" and s <= EN_START < e for d, s, e in ranges), peer.name


def test_window_units_cover_neighbouring_sentences(encoder) -> None:
    window = LlamaIndexSentenceWindow(1, show_progress=False)
    sentences, windows = window._units("en", ENGLISH)
    assert all(ENGLISH[s:e].strip() for s, e in sentences)
    i = next(k for k, (s, _) in enumerate(sentences) if s == EN_START)
    assert windows[i] == (sentences[i - 1][0], sentences[i + 1][1])
    zh_sentences, _ = window._units("zh", CHINESE)
    assert (ZH_START, ZH_START + len(ZH_EVIDENCE)) in zh_sentences  # Chinese sentence ends are split


def test_chunk_offsets_follow_the_text_even_when_it_repeats() -> None:
    # the Chinese text repeats itself; LlamaIndex's own offsets land on earlier copies here
    ranges = chunk_ranges("zh", CHINESE, 64, 20)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(CHINESE)
    for (s1, e1), (s2, e2) in zip(ranges, ranges[1:]):
        assert s1 < s2 <= e1 and e1 < e2  # in order, overlapping by the chunk overlap, no gap


def test_sentence_offsets_never_step_back() -> None:
    text = "He said no. no. Then he left. He said no. no."
    ranges = sentence_ranges("t", text, 3)
    assert [text[s:e].strip() for s, e in ranges] == ["He said no.", "no.", "Then he left.", "He said no.", "no."]
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(ranges, ranges[1:]))


def test_llamaindex_backend_ranks_like_numpy(peers) -> None:
    numpy_peer = LlamaIndexChunks(128, show_progress=False)
    numpy_peer.prepare(DOCS)
    llama_peer = next(p for p in peers if p.name == "llamaindex-chunks-128")
    for doc_ids in (["en"], None):
        for budget in (100, 300):
            query = "Which flights were grounded by volcanic ash?"
            assert llama_peer.retrieve(query, doc_ids, budget) == numpy_peer.retrieve(query, doc_ids, budget)


def test_prepare_reuses_cached_units_and_replaces_the_corpus(encoder) -> None:
    peer = LlamaIndexChunks(64, show_progress=False)
    peer.prepare({"en": ENGLISH})
    cached = peer._cache[next(iter(peer._cache))]
    peer.prepare({"en": ENGLISH, "short": DOCS["short"]})
    assert peer._cache[next(iter(peer._cache))] is cached
    peer.prepare({"short": DOCS["short"]})
    assert set(peer.docs) == {"short"}
    assert {d for d, _, _ in peer.retrieve("anything", None, 1000)} == {"short"}


def test_truncation_takes_the_longest_prefix(counter) -> None:
    peer = Truncation()
    peer.prepare(DOCS)
    for budget in (1, 17, 100):
        [(doc, start, end)] = peer.retrieve("ignored", ["zh"], budget)
        assert (doc, start) == ("zh", 0)
        assert counter.count(CHINESE[:end]) <= budget < counter.count(CHINESE[: end + 1])
    whole = counter.count(DOCS["short"])
    ranges = peer.retrieve("ignored", ["short", "en"], whole + 5)
    assert ranges[0] == ("short", 0, len(DOCS["short"])) and ranges[1][:2] == ("en", 0)


def test_lexical_tokens_mix_english_and_chinese() -> None:
    words = lexical_tokens("The Vault's PASSWORD: 新馆长名叫王静怡 and 42")
    assert "vault" in words and "password" in words and "42" in words
    assert "the" not in words and "and" not in words
    assert "馆长" in words or "新馆长" in words


text_ranges = st.lists(st.tuples(st.integers(0, 300), st.integers(1, 120)), max_size=40)


@settings(max_examples=examples(60), deadline=None)
@given(offers=text_ranges, budget=st.integers(0, 400))
def test_greedy_packer_never_exceeds_budget_nor_overlaps(offers, budget) -> None:
    counter = get_counter("cl100k_base")
    texts = {"d": ENGLISH[:420], "z": CHINESE[:420]}
    packer = GreedyPacker(texts, budget, counter)
    for i, (start, length) in enumerate(offers):
        doc = "dz"[i % 2]
        packer.offer(doc, start, min(start + length, len(texts[doc])))
    ranges = packer.ranges()
    assert check_budget(ranges, texts, budget, counter) == packer.used  # also rejects overlaps


# --- the runner -------------------------------------------------------------------

class Oracle:
    """Packs exactly the gold evidence: what a perfect method would send."""

    name = "oracle"

    def __init__(self, gold: Mapping[str, tuple[str, int, int]]) -> None:
        self.gold = gold

    def prepare(self, docs: Mapping[str, str]) -> None:
        pass

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list[tuple[str, int, int]]:
        return [self.gold[query]]


class Empty:
    name = "empty"

    def prepare(self, docs: Mapping[str, str]) -> None:
        pass

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list[tuple[str, int, int]]:
        return []


class Greedy(Empty):
    """Ignores its budget: the harness must refuse it."""

    name = "greedy"

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list[tuple[str, int, int]]:
        return [("en", 0, len(ENGLISH))]


def _eval_set() -> EvalSet:
    questions = (
        QAItem("q1", "en", "password?", ((EN_START, EN_START + len(EVIDENCE)),)),
        QAItem("q2", "zh", "馆长？", ((ZH_START, ZH_START + len(ZH_EVIDENCE)),)),
    )
    return EvalSet("tiny", DOCS, questions)


def test_evaluate_scores_oracle_one_and_empty_zero(tmp_path: Path) -> None:
    gold = {q.question: (q.doc_id, *q.evidence_offsets[0]) for q in _eval_set().questions}
    methods = [Oracle(gold), Empty(), Truncation()]
    results = evaluate({"tiny": _eval_set()}, methods, budgets=(64, 128), show_progress=False)
    assert results.cell("oracle", "tiny", 64).score == 1.0
    assert results.cell("empty", "tiny", 128).score == 0.0
    assert results.cell("empty", "tiny", 128).tokens == 0.0
    assert results.cell("truncation", "tiny", 64).tokens == 64.0
    assert results.average("oracle", 128) == 1.0

    table = results.to_markdown()
    assert table.splitlines()[0] == "| method | tiny@64 | tiny@128 | avg@64 | avg@128 |"
    assert "| oracle | 1.000 | 1.000 | 1.000 | 1.000 |" in table
    payload = json.loads(results.to_json())
    assert payload["averages"]["empty"]["64"] == 0.0 and len(payload["cells"]) == 6
    png = results.plot(tmp_path / "plots" / "recall.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_refuses_an_over_budget_method() -> None:
    from hybridctx.errors import BudgetError

    with pytest.raises(BudgetError, match="greedy packed"):
        evaluate({"tiny": _eval_set()}, [Greedy()], budgets=(64,), show_progress=False)
