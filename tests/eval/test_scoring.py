"""The scoring rules of DESIGN.md, the budget check, and the dataset loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridctx.errors import BudgetError, InputError
from hybridctx.eval.datasets import SIX_DATASETS, QAItem, load_dataset, search_scope
from hybridctx.eval.scoring import check_budget, covered_chars, merge_ranges, score_question
from hybridctx.packing.tokens import get_counter

DATA = Path("/work/shared/data")
DOCS = {"a": "x" * 100, "b": "y" * 100, "p1": "p" * 100, "p2": "q" * 40}


def evidence(*ranges: tuple[int, int], doc: str = "a") -> QAItem:
    return QAItem("q", doc, "?", evidence_offsets=tuple(ranges), kind="evidence")


# --- evidence sets ------------------------------------------------------------

def test_evidence_counts_at_exactly_90_percent() -> None:
    item = evidence((0, 100))
    assert score_question(item, [("a", 0, 90)], DOCS) == 1.0
    assert score_question(item, [("a", 0, 89)], DOCS) == 0.0
    assert score_question(item, [("a", 10, 100)], DOCS) == 1.0


def test_evidence_coverage_adds_up_over_several_ranges() -> None:
    item = evidence((0, 100))
    assert score_question(item, [("a", 0, 45), ("a", 55, 100)], DOCS) == 1.0  # 90 chars
    assert score_question(item, [("a", 0, 45), ("a", 56, 100)], DOCS) == 0.0  # 89 chars
    # overlapping packed ranges are not counted twice
    assert score_question(item, [("a", 0, 60), ("a", 30, 80)], DOCS) == 0.0


def test_evidence_score_is_the_fraction_found() -> None:
    item = evidence((0, 10), (50, 60), (90, 100), (20, 30))
    assert score_question(item, [("a", 0, 12), ("a", 49, 61)], DOCS) == 0.5
    assert score_question(item, [], DOCS) == 0.0


def test_evidence_in_another_document_does_not_count() -> None:
    item = evidence((0, 50))
    assert score_question(item, [("b", 0, 100)], DOCS) == 0.0
    assert score_question(item, [("b", 0, 100), ("a", 0, 50)], DOCS) == 1.0


# --- answer-offset sets (drcd, cmrc2018) ----------------------------------------

def test_answer_must_be_fully_inside() -> None:
    item = QAItem("q", "a", "?", answer_offsets=((40, 50), (70, 75)), kind="answer")
    assert score_question(item, [("a", 40, 50)], DOCS) == 1.0
    assert score_question(item, [("a", 41, 69)], DOCS) == 0.0  # 90% of the first is not enough
    assert score_question(item, [("a", 60, 80)], DOCS) == 1.0  # any answer will do
    assert score_question(item, [("a", 30, 45), ("a", 45, 55)], DOCS) == 1.0  # touching ranges join
    assert score_question(item, [("b", 0, 100)], DOCS) == 0.0


# --- hotpotqa: gold paragraphs --------------------------------------------------

def test_gold_paragraph_counts_at_half() -> None:
    item = QAItem("q", "p1", "?", evidence_doc_ids=("p1", "p2"), kind="docs")
    assert score_question(item, [("p1", 0, 50)], DOCS) == 0.5
    assert score_question(item, [("p1", 0, 49)], DOCS) == 0.0
    assert score_question(item, [("p1", 25, 75), ("p2", 0, 20)], DOCS) == 1.0
    assert score_question(item, [("a", 0, 100), ("b", 0, 100)], DOCS) == 0.0


def test_merge_and_cover() -> None:
    merged = merge_ranges([(5, 10), (0, 3), (3, 4), (8, 12)])
    assert merged == [(0, 4), (5, 12)]
    assert covered_chars(2, 6, merged) == 3


# --- the budget check -----------------------------------------------------------

@pytest.fixture(scope="module")
def counter():
    return get_counter("cl100k_base")


def test_check_budget_counts_and_raises(counter) -> None:
    texts = {"d": "one two three four five six seven eight nine ten " * 4}
    ranges = [("d", 0, 20), ("d", 30, 60)]
    total = check_budget(ranges, texts, 1000, counter)
    assert total == counter.count(texts["d"][0:20]) + counter.count(texts["d"][30:60])
    assert check_budget(ranges, texts, total, counter) == total
    with pytest.raises(BudgetError, match="peer-x packed"):
        check_budget(ranges, texts, total - 1, counter, method="peer-x")
    assert check_budget([], texts, 0, counter) == 0


@pytest.mark.parametrize(
    "ranges",
    [[("nope", 0, 5)], [("d", 0, 999)], [("d", 5, 5)], [("d", 6, 5)], [("d", 0, 10), ("d", 9, 20)]],
)
def test_check_budget_rejects_malformed_ranges(counter, ranges) -> None:
    with pytest.raises(InputError):
        check_budget(ranges, {"d": "abcdefghijklmnopqrstuvwxyz"}, 10_000, counter)


# --- the dataset loader ---------------------------------------------------------

def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def test_loader_keeps_only_scorable_questions_and_their_docs(tmp_path: Path) -> None:
    root = tmp_path / "leval"
    root.mkdir()
    _write(root / "docs.jsonl", [{"doc_id": f"d{i}", "text": f"document {i} " * 20} for i in range(4)])
    _write(root / "qa.jsonl", [
        {"id": "q0", "doc_id": "d0", "question": "a?", "evidence_offsets": [[0, 10]]},
        {"id": "q1", "doc_id": "d1", "question": "b?", "evidence_offsets": []},
        {"id": "q2", "doc_id": "d2", "question": "c?", "evidence_offsets": [[5, 15], [20, 30]]},
        {"id": "q3", "doc_id": "d3", "question": "d?"},
    ])
    ds = load_dataset(root)
    assert [q.id for q in ds.questions] == ["q0", "q2"]
    assert set(ds.docs) == {"d0", "d2"}
    assert ds.scope == "doc" and not ds.haystack
    assert ds.questions[1].evidence_offsets == ((5, 15), (20, 30))
    assert ds.doc_ids_for(ds.questions[0]) == ["d0"]


def test_loader_limit_is_reproducible(tmp_path: Path) -> None:
    root = tmp_path / "locomo"
    root.mkdir()
    _write(root / "docs.jsonl", [{"doc_id": f"d{i}", "text": "t" * 50} for i in range(30)])
    _write(root / "qa.jsonl", [
        {"id": f"q{i}", "doc_id": f"d{i}", "question": "?", "evidence_offsets": [[0, 5]]} for i in range(30)
    ])
    first, again = load_dataset(root, limit=7, seed=3), load_dataset(root, limit=7, seed=3)
    assert [q.id for q in first.questions] == [q.id for q in again.questions]
    assert len(first.questions) == 7
    assert set(first.docs) == {q.doc_id for q in first.questions}
    assert [q.id for q in load_dataset(root, limit=7, seed=4).questions] != [q.id for q in first.questions]


def test_loader_prefers_haystacks_and_scores_answers(tmp_path: Path) -> None:
    root = tmp_path / "drcd"
    root.mkdir()
    _write(root / "docs.jsonl", [{"doc_id": "art", "text": "短文。"}])
    _write(root / "qa.jsonl", [{"id": "q", "doc_id": "art", "question": "？", "answer_offsets": [[0, 2]]}])
    _write(root / "haystack_docs.jsonl", [{"doc_id": "hay", "text": "很长的文本。" * 10}])
    _write(root / "haystack_qa.jsonl", [
        {"id": "q", "doc_id": "hay", "question": "？", "evidence_offsets": [[6, 12]], "answer_offsets": [[6, 8]]},
        {"id": "q2", "doc_id": "hay", "question": "？", "evidence_offsets": [[6, 12]], "answer_offsets": []},
    ])
    ds = load_dataset(root)
    assert ds.haystack and set(ds.docs) == {"hay"}
    assert [(q.id, q.kind) for q in ds.questions] == [("q", "answer")]
    assert load_dataset(root, haystack=False).docs.keys() == {"art"}


def test_loader_keeps_whole_corpus_for_hotpotqa(tmp_path: Path) -> None:
    root = tmp_path / "hotpotqa"
    root.mkdir()
    _write(root / "docs.jsonl", [{"doc_id": f"p{i}", "text": f"paragraph {i}"} for i in range(10)])
    _write(root / "qa.jsonl", [
        {"id": "q0", "doc_id": "p0", "question": "?", "evidence_offsets": [], "evidence_doc_ids": ["p0", "p1"]},
        {"id": "q1", "doc_id": "p2", "question": "?", "evidence_offsets": [], "evidence_doc_ids": []},
    ])
    ds = load_dataset(root, limit=1)
    assert ds.scope == "corpus" and len(ds.docs) == 10
    assert [(q.id, q.kind, q.evidence_doc_ids) for q in ds.questions] == [("q0", "docs", ("p0", "p1"))]
    assert ds.doc_ids_for(ds.questions[0]) is None


def test_loader_rejects_offsets_outside_the_document(tmp_path: Path) -> None:
    root = tmp_path / "leval"
    root.mkdir()
    _write(root / "docs.jsonl", [{"doc_id": "d", "text": "short"}])
    _write(root / "qa.jsonl", [{"id": "q", "doc_id": "d", "question": "?", "evidence_offsets": [[0, 99]]}])
    with pytest.raises(InputError, match="outside"):
        load_dataset(root)


def test_search_scope() -> None:
    assert [search_scope(n) for n in SIX_DATASETS] == ["doc", "doc", "corpus", "doc", "doc", "doc"]


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize("name", SIX_DATASETS)
def test_real_datasets_load_scorable_questions(name: str) -> None:
    ds = load_dataset(DATA / name, limit=25, seed=0)
    assert 0 < len(ds.questions) <= 25
    assert ds.haystack == (name in ("drcd", "cmrc2018"))
    for q in ds.questions:
        assert q.doc_id in ds.docs
        if q.kind == "evidence":
            assert q.evidence_offsets
        elif q.kind == "answer":
            assert q.answer_offsets
        else:
            assert q.evidence_doc_ids and all(d in ds.docs for d in q.evidence_doc_ids)
