"""Window planning: every sentence is read whole, with the most context available."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.embeddings.windows import plan_windows, sentence_token_ranges


@st.composite
def sentence_layouts(draw):
    lengths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=80))
    starts = np.cumsum([0] + lengths[:-1])
    ranges = np.stack([starts, starts + np.asarray(lengths)], axis=1).astype(np.int64)
    length = draw(st.integers(41, 160))
    overlap = draw(st.integers(0, length // 2))
    return ranges, int(ranges[-1, 1]), length, overlap


@settings(max_examples=examples(200), deadline=None)
@given(sentence_layouts())
def test_every_sentence_lies_whole_in_its_window(layout) -> None:
    ranges, n_tokens, length, overlap = layout
    plan = plan_windows(ranges, n_tokens, length, overlap)
    assert plan.windows[:, 1].max() <= n_tokens
    assert np.all(plan.windows[:, 1] - plan.windows[:, 0] <= length)
    assert np.all(np.diff(plan.windows[:, 0]) > 0)
    for (ts, te), w in zip(ranges, plan.assignment):
        a, b = plan.windows[w]
        assert a <= ts and te <= b
        # No earlier window holds it whole: this window gives the most preceding context.
        for earlier in range(w):
            ea, eb = plan.windows[earlier]
            assert not (ea <= ts and te <= eb)


@settings(max_examples=examples(100), deadline=None)
@given(sentence_layouts())
def test_later_sentences_keep_the_overlap_as_context(layout) -> None:
    ranges, n_tokens, length, overlap = layout
    plan = plan_windows(ranges, n_tokens, length, overlap)
    for (ts, te), w in zip(ranges, plan.assignment):
        a, _ = plan.windows[w]
        if w > 0:
            # As much context as the overlap asks, unless the window has no room for it (the
            # sentence is long, or windows must advance): then the sentence starts its window.
            previous = plan.windows[w - 1][0]
            assert ts - a >= min(overlap, ts - previous - 1, length - (te - ts)) or ts == a


def test_overlong_sentence_gets_its_own_truncated_window() -> None:
    ranges = np.array([[0, 5], [5, 300], [300, 310]], dtype=np.int64)
    plan = plan_windows(ranges, 310, 100, 20)
    a, b = plan.windows[plan.assignment[1]]
    assert a == 5 and b == 105


def test_sentence_token_ranges_map_chars_to_tokens() -> None:
    offsets = np.array([[0, 3], [4, 7], [7, 8], [9, 13], [14, 17], [17, 18]], dtype=np.int64)
    sentences = np.array([[0, 8], [9, 18]], dtype=np.int64)
    assert sentence_token_ranges(offsets, sentences).tolist() == [[0, 3], [3, 6]]


@settings(max_examples=examples(200), deadline=None)
@given(sentence_layouts())
def test_windows_ended_at_a_sentence_read_the_same_landmarks_from_fewer_tokens(layout) -> None:
    ranges, n_tokens, length, overlap = layout
    full = plan_windows(ranges, n_tokens, length, overlap)
    trimmed = plan_windows(ranges, n_tokens, length, overlap, end_at_sentence=True)
    # Same starts, same owners: each landmark keeps its preceding context and its window.
    np.testing.assert_array_equal(trimmed.assignment, full.assignment)
    np.testing.assert_array_equal(trimmed.windows[:, 0], full.windows[:, 0])
    assert np.all(trimmed.windows[:, 1] <= full.windows[:, 1])
    for w, (a, b) in enumerate(trimmed.windows.tolist()):
        owned = ranges[trimmed.assignment == w]
        assert len(owned), "a window that reads no landmark"
        assert np.all(owned[:, 0] >= a) and np.all(owned[:, 1] <= b)
        # It ends where its last landmark's sentence ends (sentences here are shorter than a window).
        assert b == int(owned[:, 1].max())


def test_an_overlong_sentence_still_fills_its_window_when_windows_end_at_sentences() -> None:
    ranges = np.array([[0, 5], [5, 300], [300, 310]], dtype=np.int64)
    plan = plan_windows(ranges, 310, 100, 20, end_at_sentence=True)
    assert plan.windows.tolist() == [[0, 5], [5, 105], [280, 310]]
    assert plan.assignment.tolist() == [0, 1, 2]
