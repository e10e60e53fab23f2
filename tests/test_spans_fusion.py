"""Span growth and rank fusion (pure logic, no model)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.errors import ConfigError
from hybridctx.retrieval.fusion import reciprocal_rank_fusion
from hybridctx.retrieval.spans import GrowthRule, SentenceTable, grow_spans


def table(n: int, paragraph_breaks: tuple[int, ...] = ()) -> SentenceTable:
    starts = np.arange(n, dtype=np.int64) * 10
    paragraphs = np.zeros(n, dtype=np.int64)
    for b in paragraph_breaks:
        paragraphs[b:] += 1
    return SentenceTable(starts, starts + 9, paragraphs)


def test_hit_grows_backwards_within_its_paragraph() -> None:
    (span,) = grow_spans([("d", 6, 1.0)], lambda _: table(20, (4,)), GrowthRule(back=3, forward=1))
    assert span.first_sentence == 4  # sentence 3 is in the previous paragraph
    assert span.sentences[0] == (40, 49) and span.sentences[-1] == (70, 79)
    assert span.sentences[span.anchor] == (60, 69)


def test_overlapping_and_adjacent_hits_merge_and_score_from_their_hits() -> None:
    rule = GrowthRule(back=1, forward=0, support=0.5)
    spans = grow_spans([("d", 3, 0.9), ("d", 5, 0.4), ("d", 12, 0.7)], lambda _: table(20), rule)
    assert [(s.first_sentence, len(s.sentences)) for s in spans] == [(2, 4), (11, 2)]
    assert spans[0].score == pytest.approx(0.9 + 0.5 * 0.4)
    assert spans[0].sentences[spans[0].anchor] == (30, 39)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 59), st.floats(0.01, 1.0)), min_size=1, max_size=30),
       st.integers(0, 5), st.integers(0, 3))
def test_spans_never_overlap_and_cover_every_hit(hits, back, forward) -> None:
    spans = grow_spans([("d", o, s) for o, s in hits], lambda _: table(60, (20, 41)), GrowthRule(back, forward))
    covered = [c for s in spans for c in range(s.first_sentence, s.first_sentence + len(s.sentences))]
    assert len(covered) == len(set(covered))
    assert {o for o, _ in hits} <= set(covered)
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)


def test_growth_rule_validation() -> None:
    with pytest.raises(ConfigError, match="back=-1"):
        GrowthRule(back=-1)


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    rows, scores = reciprocal_rank_fusion([np.array([1, 2, 3]), np.array([3, 4, -1])], k=60)
    assert rows[0] == 3  # in both lists
    assert scores[0] == pytest.approx(1 / 63 + 1 / 61)
    assert set(rows.tolist()) == {1, 2, 3, 4}
    rows, _ = reciprocal_rank_fusion([np.array([1, 2]), np.array([2, 1])], weights=[0.0, 1.0])
    assert rows.tolist() == [2, 1]
    assert len(reciprocal_rank_fusion([np.array([-1])])[0]) == 0
