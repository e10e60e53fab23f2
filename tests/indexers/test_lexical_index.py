"""LexicalIndex and lexical_tokens: English and Chinese BM25, filtering, persistence."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.errors import IndexCorruptError, InputError
from hybridctx.indexers.lexical.bm25 import LexicalIndex, TokenizerSettings, lexical_tokens

SENTENCES = [
    "The lease term begins on the Effective Date and runs for five years.",
    "Either party may terminate this agreement with ninety days notice.",
    "北京是中华人民共和国的首都，也是全国的政治中心。",
    "长江是中国最长的河流，全长约6300公里。",
    "Payment is due within 30 days of each invoice.",
    "The tenant pays all utilities and insurance premiums.",
    "上海是中国的经济中心和最大的城市。",
]
ROWS = np.array([2, 3, 7, 8, 9, 20, 21], dtype=np.int64)


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(SENTENCES, ROWS)


def test_tokens_english_and_chinese() -> None:
    toks = lexical_tokens("The Tenants' 2 studies of GPT4, in 2024-11!")
    assert toks == ["tenant", "2", "study", "gpt4", "2024", "11"]
    zh = lexical_tokens("长江是中国最长的河流")
    assert {"长江", "中国", "河流"} <= set(zh)
    assert "的" not in zh and "是" not in zh
    assert "国最" in zh  # character bigrams
    plain = lexical_tokens("长江是中国最长的河流", TokenizerSettings(cjk_bigrams=False))
    assert "国最" not in plain
    assert lexical_tokens("") == [] and lexical_tokens("  ,.;") == []


def test_finds_english_and_chinese(index: LexicalIndex) -> None:
    scores, rows = index.search("When can a party terminate the agreement?", 3)
    assert rows[0] == 3 and scores[0] > 0
    scores, rows = index.search("中国的首都是哪里？", 3)
    assert rows[0] == 7
    scores, rows = index.search("中国最长的河流有多长", 2)
    assert rows[0] == 8
    assert np.all(np.diff(scores) <= 0) and scores.dtype == np.float32 and rows.dtype == np.int64


def test_allowed_rows_are_respected(index: LexicalIndex) -> None:
    _, rows = index.search("中心", 10)
    assert set(rows) == {7, 21}
    _, rows = index.search("中心", 10, allowed_rows=np.array([8, 21, 99, -1]))
    assert rows.tolist() == [21]
    all_scores = dict(zip(*index.search("days", 10)[::-1]))
    scores, rows = index.search("days", 10, allowed_rows=np.array([9]))
    assert rows.tolist() == [9] and scores[0] == pytest.approx(all_scores[9])
    assert len(index.search("days", 10, allowed_rows=np.array([], dtype=np.int64))[1]) == 0


def test_no_match_and_k(index: LexicalIndex) -> None:
    assert len(index.search("zyxwvut", 5)[1]) == 0
    assert len(index.search("the of and", 5)[1]) == 0  # stopwords only
    assert len(index.search("中国", 1)[1]) == 1
    with pytest.raises(InputError):
        index.search("x", 0)


def test_empty_index(tmp_path: Path) -> None:
    empty = LexicalIndex.build([])
    assert len(empty) == 0 and len(empty.search("anything", 3)[1]) == 0
    empty.save(tmp_path)
    assert len(LexicalIndex.load(tmp_path)) == 0


def test_rows_must_ascend() -> None:
    with pytest.raises(InputError, match="ascending"):
        LexicalIndex.build(["a b", "c d"], np.array([5, 1]))


def test_save_load_without_pickle(index: LexicalIndex, tmp_path: Path) -> None:
    names = index.save(tmp_path)
    for name in names:
        if name.endswith(".npy"):
            np.load(tmp_path / name, allow_pickle=False)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded.settings == index.settings
    for q in ("terminate agreement", "中国的城市", "30 days"):
        for a, b in zip(index.search(q, 5), loaded.search(q, 5)):
            np.testing.assert_array_equal(a, b)
    (tmp_path / "lexical.vocab.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        LexicalIndex.load(tmp_path)


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet="ab c中国人民。 12", max_size=20), max_size=12), st.text(alphabet="ab c中国人 1", max_size=8))
def test_round_trip_and_scores_agree(tmp_path: Path, texts: list[str], query: str) -> None:
    built = LexicalIndex.build(texts)
    out = tmp_path / uuid.uuid4().hex
    built.save(out)
    loaded = LexicalIndex.load(out)
    np.testing.assert_array_equal(built.scores(query), loaded.scores(query))
    scores, rows = built.search(query, 3)
    assert len(rows) <= 3 and (scores > 0).all()
    full = built.scores(query)
    if len(rows):
        assert scores[0] == pytest.approx(full.max())
