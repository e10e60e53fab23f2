"""Packing: scored spans in, the context a model reads out, within an exact token budget.

Why: a context that is one token over the budget is a failed request, and one that
wastes a tenth of the budget loses evidence. This module owns three decisions:
which spans go in (greedy by score, trimming a span to whole sentences around its
anchor rather than dropping it), where they go (document order, relevance order,
or relevance at the edges), and the proof that the *rendered* string, markers and
separators included, fits the budget in the target tokenizer.

Markers. Each span's marker line is ``[k] doc_id``, or ``[k] doc_id § header``
when the caller gives each sentence's header (the retriever's
``header_markers``). Marker lines are part of the budget: a header marker
differs per span (it names the section of the span's *first* sentence, which
trimming may move), so each unit is charged the costliest marker any of its
possible first sentences would give it.

Counting. Selection works on per-block token counts (batched through
``count_many``); BPE counts are not exactly additive across joins, so the final
string is counted once more, and when it is over (rare) the selection is redone
with the overshoot taken off its budget until the true count fits. An empty
context (0 tokens) always fits, so this ends.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from hybridctx.datatypes import PackedContext, Span
from hybridctx.errors import BudgetError, ConfigError, InputError
from hybridctx.packing.slice_tokens import SliceCounts, slice_counts
from hybridctx.packing.tokens import TokenCounter, count_many

__all__ = ["HeaderLookup", "PackOrder", "SpanCandidate", "pack", "render"]

logger = logging.getLogger(__name__)

PackOrder = Literal["document", "relevance", "edges"]
_ORDERS: tuple[str, ...] = get_args(PackOrder)
_SEPARATOR = "\n\n"
_HEADER_MARK = " § "

HeaderLookup = Callable[[str, Sequence[int]], Sequence[str]]
"""``(doc_id, sentence start offsets) -> the header each marker would show ('' for none)``."""


@dataclass(frozen=True)
class SpanCandidate:
    """A scored run of consecutive whole sentences of one document.

    Attributes:
        doc_id: the document it comes from.
        score: relevance; higher is better.
        sentences: char ranges ``(start, end)`` of its sentences, in order and not
            overlapping. The span's text is ``doc[sentences[0][0]:sentences[-1][1]]``,
            gaps between sentences included.
        anchor: index into ``sentences`` of the strongest hit, kept when the span is
            trimmed; negative indices count from the end (``-1``, the default, is the
            last sentence, since a landmark marks the *end* of its evidence).
        sentence_scores: optional relevance of each sentence; when given, trimming
            grows towards the better neighbour instead of always backwards first.
        first_sentence: optional 0-based ordinal of ``sentences[0]`` among the
            document's sentences; packed spans then carry their sentence ordinals.
    """

    doc_id: str
    score: float
    sentences: tuple[tuple[int, int], ...]
    anchor: int = -1
    sentence_scores: tuple[float, ...] | None = None
    first_sentence: int | None = None

    def __post_init__(self) -> None:
        n = len(self.sentences)
        if math.isnan(self.score):
            raise InputError(f"span candidate for '{self.doc_id}' has score NaN; give a number")
        if n == 0:
            raise InputError(f"span candidate for '{self.doc_id}' has no sentences; give at least one")
        previous_end = 0
        for i, (start, end) in enumerate(self.sentences):
            if not 0 <= start < end or start < previous_end:
                raise InputError(
                    f"span candidate for '{self.doc_id}' has sentence {i} at ({start}, {end}); sentences "
                    "must be non-empty char ranges, in order and not overlapping"
                )
            previous_end = end
        if not -n <= self.anchor < n:
            raise InputError(
                f"span candidate for '{self.doc_id}' has anchor {self.anchor} but only {n} sentences"
            )
        if self.sentence_scores is not None and len(self.sentence_scores) != n:
            raise InputError(
                f"span candidate for '{self.doc_id}' has {len(self.sentence_scores)} sentence scores "
                f"for {n} sentences; give one per sentence or none"
            )
        if self.first_sentence is not None and self.first_sentence < 0:
            raise InputError(
                f"span candidate for '{self.doc_id}' has first_sentence {self.first_sentence}; "
                "give a 0-based ordinal or None"
            )

    @classmethod
    def checked_elsewhere(
        cls, doc_id: str, score: float, sentences: tuple[tuple[int, int], ...], anchor: int,
        sentence_scores: tuple[float, ...] | None, first_sentence: int | None,
    ) -> SpanCandidate:
        """A candidate built without :meth:`__post_init__`'s checks, for callers whose
        inputs hold by construction (span growth over a sentence table makes a hundred
        a query, and repeating the checks showed in that stage's profile)."""
        made = object.__new__(cls)
        # What the frozen dataclass's __init__ does, minus a setattr call per field.
        made.__dict__.update(doc_id=doc_id, score=score, sentences=sentences, anchor=anchor,
                             sentence_scores=sentence_scores, first_sentence=first_sentence)
        return made

    @property
    def start(self) -> int:
        """Char offset of the first character."""
        return self.sentences[0][0]

    @property
    def end(self) -> int:
        """Char offset one past the last character."""
        return self.sentences[-1][1]


class _Unit:
    """A merged candidate with its token counts, cached across selection rounds."""

    __slots__ = ("doc_id", "doc_rank", "doc", "sentences", "score", "anchor", "guide", "ordinal",
                 "tokens", "anchor_tokens", "alone", "joined", "estimated", "heads", "marker_cost")

    def __init__(self, doc_id: str, doc_rank: int, doc: str, sentences: list[tuple[int, int]],
                 score: float, anchor: int, guide: list[float] | None, ordinal: int | None) -> None:
        self.doc_id = doc_id
        self.doc_rank = doc_rank  # first appearance of the document among the candidates
        self.doc = doc
        self.sentences = sentences
        self.score = score
        self.anchor = anchor
        self.guide = guide  # per-sentence relevance steering the trim, or None
        self.ordinal = ordinal  # document ordinal of sentences[0], when known
        self.tokens = 0  # whole text
        self.anchor_tokens: int | None = None  # anchor sentence alone, counted when first needed
        self.alone: list[int] | None = None  # each sentence alone
        self.joined: list[int] | None = None  # gap before sentence i, plus sentence i
        self.estimated = False  # counts come from whole-document token offsets
        self.heads: list[str] | None = None  # header of sentences 0..anchor (the possible first ones)
        self.marker_cost = 0  # tokens of its costliest possible marker line

    def slices(self, counter: TokenCounter) -> SliceCounts | None:
        """The document's cached token offsets in ``counter``, when it has them."""
        return slice_counts(counter, self.doc_id, self.doc)

    @property
    def start(self) -> int:
        return self.sentences[0][0]

    def text(self, first: int = 0, last: int | None = None) -> str:
        last = len(self.sentences) - 1 if last is None else last
        return self.doc[self.sentences[first][0] : self.sentences[last][1]]

    def header(self, first: int) -> str:
        """What the marker shows after the id when the span starts at sentence ``first``."""
        return self.heads[first] if self.heads is not None and first < len(self.heads) else ""

    def to_span(self, first: int, last: int, tokens: int) -> Span:
        """The span of sentences ``first..last`` (indices into ``sentences``)."""
        base = self.ordinal
        return Span(
            doc_id=self.doc_id,
            start=self.sentences[first][0],
            end=self.sentences[last][1],
            score=self.score,
            tokens=tokens,
            text=self.text(first, last),
            first_sentence=base + first if base is not None else 0,
            last_sentence=base + last if base is not None else 0,
            trimmed=first > 0 or last < len(self.sentences) - 1,
            header=self.header(first),
        )

    def sort_key(self) -> tuple[float, int, int]:
        return (-self.score, self.doc_rank, self.start)


@dataclass(frozen=True)
class _Choice:
    unit: _Unit
    first: int
    last: int

    @property
    def trimmed(self) -> bool:
        return self.first > 0 or self.last < len(self.unit.sentences) - 1


def render(spans: Sequence[Span], *, markers: bool = True) -> str:
    """Render spans as the context string a model reads.

    With markers, each span is preceded by a line ``[k] doc_id`` (``k`` is its
    1-based position, so an answer can cite ``[k]``), or ``[k] doc_id § header``
    when the span has a ``header``; spans are separated by a blank line.

    Args:
        spans: spans in the order they should appear.
        markers: whether to add the source marker lines.

    Returns:
        The context; ``""`` for no spans.
    """
    return _render_placed([(s.doc_id, s.header, s.text) for s in spans], markers)[0]


def _render_placed(pieces: Sequence[tuple[str, str, str]], markers: bool) -> tuple[str, list[tuple[int, int]]]:
    """The context of ``(doc_id, header, text)`` pieces in the :func:`render` format, and the
    ``(start, end)`` char range of each piece's text inside it."""
    parts: list[str] = []
    placed: list[tuple[int, int]] = []
    at = 0
    for position, (doc_id, header, text) in enumerate(pieces, 1):
        head = (_SEPARATOR if position > 1 else "") + (_marker(position, doc_id, header) + "\n" if markers else "")
        parts += (head, text)
        at += len(head)
        placed.append((at, at + len(text)))
        at += len(text)
    return "".join(parts), placed


def pack(
    candidates: Sequence[SpanCandidate],
    texts: Mapping[str, str] | Callable[[str], str],
    budget: int,
    counter: TokenCounter,
    *,
    query: str = "",
    order: PackOrder = "document",
    reserve: int = 0,
    markers: bool = True,
    allow_trim: bool = True,
    max_span_tokens: int | None = None,
    headers: HeaderLookup | None = None,
) -> PackedContext:
    """Choose, trim, lay out and render spans so the context fits ``budget - reserve`` tokens.

    Overlapping candidates of a document are merged first (score = max; the anchor
    of the best one is kept), so no character is packed twice; candidates that only
    touch stay separate. Then, best score first (ties: earlier document, earlier
    offset), each candidate goes in whole if it fits; if not and ``allow_trim``, it
    is cut to the whole sentences around its anchor that fit, growing backwards
    first (or towards the better neighbour when ``sentence_scores`` are given);
    later, smaller candidates may still fit after that.

    Layout by ``order``:

    * ``"document"``: grouped by document, documents ranked by their best packed
      span (ties: first appearance among the candidates), spans of a document by
      offset: reads like the source.
    * ``"relevance"``: best score first.
    * ``"edges"``: best spans at the start and the end, weakest in the middle
      (against lost-in-the-middle): ranks 1, 3, 5, ... then ..., 6, 4, 2.

    Args:
        candidates: scored spans, in any order, possibly overlapping.
        texts: document texts by id, or a function returning the text of an id.
        budget: token budget of the whole context.
        counter: the target model's token counter.
        query: the question, recorded in the result.
        order: layout, see above.
        reserve: tokens to keep free inside ``budget`` (e.g. for a prompt template).
        markers: precede each span with a ``[k] doc_id`` line.
        allow_trim: trim a candidate that does not fit instead of dropping it.
        max_span_tokens: trim any one span to at most this many tokens (around
            its anchor), so that a long merged span cannot take the whole
            budget from the next-best evidence; ``None`` = no cap.
        headers: with markers, the header each sentence would show in its
            span's marker (``[k] doc_id § header``; ``''`` shows none), asked
            once per candidate for the sentences that can start its span; each
            span's own marker is counted in the budget. ``None``: ids only.

    Returns:
        The packed context. ``tokens`` is the true count of ``context`` and is at
        most ``budget - reserve``; each packed span's ``tokens`` is exact: the
        tokens of ``context`` that begin inside the span's text (what the span
        costs where it stands; with the counters hybridctx ships, which report
        token offsets, ``context`` is tokenized once for all of them), or, for
        a counter without offsets, the count of its text alone. ``dropped``
        holds the (merged) candidates left out entirely, with their token counts
        (estimated from the document's token offsets when the counter provides
        them: one token off at most, typically); trimmed spans have
        ``trimmed=True``.
        A budget too small for any span gives an empty context, not an error.

    Raises:
        BudgetError: ``budget`` is not positive, or ``reserve`` leaves nothing.
        ConfigError: ``order`` is not a known layout.
        InputError: a candidate names a document without text, or reaches past its end.
    """
    started = time.perf_counter()
    if budget <= 0:
        raise BudgetError(f"budget is {budget} tokens; give a positive budget")
    if reserve < 0:
        raise BudgetError(f"reserve is {reserve} tokens; give zero or more")
    if reserve >= budget:
        raise BudgetError(
            f"reserve of {reserve} tokens leaves nothing of the budget of {budget}; "
            "raise the budget or lower the reserve"
        )
    if order not in _ORDERS:
        raise ConfigError(f"order '{order}' is unknown; use one of {', '.join(_ORDERS)}")
    limit = budget - reserve

    units = _merge(candidates, texts)
    _count_units(units, counter)
    separator_cost = counter.count(_SEPARATOR)
    if markers:
        _price_markers(units, counter, headers)

    ranked = sorted(units, key=_Unit.sort_key)
    target = limit
    rounds = 0
    while True:
        rounds += 1
        chosen = _select(ranked, target, counter, separator_cost, allow_trim, max_span_tokens)
        laid_out = _layout(chosen, order)
        pieces = [(c.unit.doc_id, c.unit.header(c.first), c.unit.text(c.first, c.last)) for c in laid_out]
        context, placed = _render_placed(pieces, markers)
        starts = _token_starts(counter, context)
        tokens = len(starts) if starts is not None else counter.count(context) if context else 0
        if tokens <= limit:
            break
        # The joins cost more than their parts: shrink the selection budget by the overshoot.
        target -= tokens - limit

    spans = _to_spans(laid_out, counter, placed, starts)
    packed = {id(c.unit) for c in chosen}
    dropped = tuple(
        u.to_span(0, len(u.sentences) - 1, u.tokens)
        for u in ranked
        if id(u) not in packed
    )
    elapsed = (time.perf_counter() - started) * 1000.0
    logger.debug(
        "packed %d spans (%d trimmed, %d dropped) into %d of %d tokens (reserve %d) in %d round(s), %.2f ms",
        len(spans), sum(s.trimmed for s in spans), len(dropped), tokens, budget, reserve, rounds, elapsed,
    )
    return PackedContext(
        query=query,
        budget=budget,
        tokenizer=counter.name,
        tokens=tokens,
        context=context,
        spans=tuple(spans),
        dropped=dropped,
        timings_ms={"pack": elapsed},
    )


_MARKER_COSTS: dict[tuple[str, str], int] = {}  # (tokenizer, marker line) -> tokens
_MARKER_COSTS_MAX = 100_000


def _price_markers(units: list[_Unit], counter: TokenCounter, headers: HeaderLookup | None) -> None:
    """Set each unit's ``marker_cost``: the tokens of its costliest possible marker line,
    numbered with the widest number a marker can carry. With ``headers``, a unit's span
    may start at any sentence up to its anchor, so each of those sentences' headers is a
    possible marker."""
    widest = max(len(units), 1)
    lines: list[list[str]] = []
    for unit in units:
        if headers is None:
            lines.append([_marker(widest, unit.doc_id) + "\n"])
            continue
        offsets = [start for start, _ in unit.sentences[: unit.anchor + 1]]
        unit.heads = [_one_line(h) for h in headers(unit.doc_id, offsets)]
        lines.append([_marker(widest, unit.doc_id, h) + "\n" for h in dict.fromkeys(unit.heads)])
    costs = _line_costs(counter, {line for group in lines for line in group})
    for unit, group in zip(units, lines):
        unit.marker_cost = max(costs[line] for line in group)


def _line_costs(counter: TokenCounter, lines: set[str]) -> dict[str, int]:
    """Tokens of each marker line; remembered, since the same documents (and sections)
    come back query after query (each query would count one line per unit it packs from)."""
    # Read into a local dict first: a full memory is cleared below, and that must not lose the
    # lines this call found there (or another thread's clear between the check and the read).
    known = {line: _MARKER_COSTS.get((counter.name, line)) for line in lines}
    missing = sorted(line for line, n in known.items() if n is None)
    counted = dict(zip(missing, count_many(counter, missing))) if missing else {}
    if counted:
        if len(_MARKER_COSTS) + len(counted) > _MARKER_COSTS_MAX:
            _MARKER_COSTS.clear()
        _MARKER_COSTS.update(((counter.name, line), n) for line, n in counted.items())
    return {line: n if n is not None else counted[line] for line, n in known.items()}


def _marker(position: int, doc_id: str, header: str = "") -> str:
    # A line break inside an id or header would split the marker line and confuse citations.
    label = _one_line(doc_id)
    return f"[{position}] {label}{_HEADER_MARK}{_one_line(header)}" if header else f"[{position}] {label}"


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


_Texts = Mapping[str, str] | Callable[[str], str]


def _doc_text(texts: _Texts, doc_id: str) -> str:
    if isinstance(texts, Mapping):
        try:
            return texts[doc_id]
        except KeyError:
            raise InputError(
                f"a span candidate names document '{doc_id}' but no text was given for it"
            ) from None
    return texts(doc_id)


def _merge(candidates: Sequence[SpanCandidate], texts: _Texts) -> list[_Unit]:
    """Merge candidates that share characters into units, per document."""
    by_doc: dict[str, list[SpanCandidate]] = {}
    for cand in candidates:
        by_doc.setdefault(cand.doc_id, []).append(cand)
    units: list[_Unit] = []
    for rank, (doc_id, group) in enumerate(by_doc.items()):
        doc = _doc_text(texts, doc_id)
        group.sort(key=lambda c: (c.start, c.end))
        cluster: list[SpanCandidate] = []
        cluster_end = 0
        for cand in group:
            if cand.end > len(doc):
                raise InputError(
                    f"a span candidate ends at char {cand.end} but document '{doc_id}' has {len(doc)} chars"
                )
            if cluster and cand.start >= cluster_end:  # shares no character with the cluster
                units.append(_merge_cluster(doc_id, rank, doc, cluster))
                cluster = []
            cluster_end = max(cluster_end, cand.end) if cluster else cand.end
            cluster.append(cand)
        if cluster:
            units.append(_merge_cluster(doc_id, rank, doc, cluster))
    return units


def _merge_cluster(doc_id: str, rank: int, doc: str, cluster: list[SpanCandidate]) -> _Unit:
    best = min(cluster, key=lambda c: (-c.score, c.start))
    if len(cluster) == 1:
        guide = list(best.sentence_scores) if best.sentence_scores is not None else None
        return _Unit(doc_id, rank, doc, list(best.sentences), best.score, best.anchor % len(best.sentences),
                     guide, best.first_sentence)
    # Union of the sentences; two that partly overlap (different splits) become one.
    merged: list[tuple[int, int]] = []
    for start, end in sorted({s for c in cluster for s in c.sentences}):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    starts = [s for s, _ in merged]

    def where(sentence: tuple[int, int]) -> int:
        return bisect_right(starts, sentence[0]) - 1

    guide = None
    if any(c.sentence_scores is not None for c in cluster):
        # Sentences nobody scored rank below every scored one.
        guide = [float("-inf")] * len(merged)
        for cand in cluster:
            if cand.sentence_scores is not None:
                for sentence, value in zip(cand.sentences, cand.sentence_scores):
                    j = where(sentence)
                    guide[j] = max(guide[j], value)
    anchor = where(best.sentences[best.anchor])
    # Ordinals survive the merge only when every member knows its own and no sentences were coalesced.
    ordinal = None
    if all(c.first_sentence is not None for c in cluster):
        low = min(c.first_sentence for c in cluster if c.first_sentence is not None)
        high = max(c.first_sentence + len(c.sentences) for c in cluster if c.first_sentence is not None)
        if high - low == len(merged):
            ordinal = low
    return _Unit(doc_id, rank, doc, merged, max(c.score for c in cluster), anchor, guide, ordinal)


_ESTIMATE_SLACK = 3  # tokens: within this of fitting, an estimated unit is counted exactly


def _count_units(units: list[_Unit], counter: TokenCounter) -> None:
    """Each unit's whole-text tokens: read off its document's cached token
    offsets when the counter has them (an estimate, see :mod:`slice_tokens`),
    else counted. Dropped units report this number."""
    rest = []
    by_doc: dict[str, list[_Unit]] = {}
    for unit in units:
        by_doc.setdefault(unit.doc_id, []).append(unit)
    for group in by_doc.values():
        sliced = group[0].slices(counter)
        if sliced is None:
            rest.extend(group)
            continue
        # One vectorised lookup per document: a query's units are a few hundred.
        bounds = np.asarray([(u.sentences[0][0], u.sentences[-1][1]) for u in group], dtype=np.int64)
        for unit, tokens in zip(group, sliced.counts(bounds).tolist()):
            unit.tokens, unit.estimated = tokens, True
    counts = count_many(counter, [u.text() for u in rest]) if rest else []
    for unit, tokens in zip(rest, counts):
        unit.tokens = tokens


def _count_sentences(unit: _Unit, counter: TokenCounter) -> tuple[list[int], list[int]]:
    """Per-sentence counts for trimming: each sentence alone, and with the gap before it.

    A block of sentences ``a..b`` is estimated as ``alone[a] + joined[a+1] + ... +
    joined[b]``: the gap travels with the sentence after it, as BPE attaches
    leading whitespace to the next word.
    """
    doc, sents = unit.doc, unit.sentences
    sliced = unit.slices(counter)
    if sliced is not None:
        alone = sliced.counts(np.asarray(sents, dtype=np.int64)).tolist()
        gaps = [(sents[i - 1][1], sents[i][1]) for i in range(1, len(sents))]
        joined = sliced.counts(np.asarray(gaps, dtype=np.int64)).tolist() if gaps else []
        unit.alone, unit.joined = alone, [0] + joined
        return unit.alone, unit.joined
    alone_texts = [doc[s:e] for s, e in sents]
    joined_texts = [doc[sents[i - 1][1] : sents[i][1]] for i in range(1, len(sents))]
    counts = count_many(counter, alone_texts + joined_texts)
    unit.alone, unit.joined = counts[: len(sents)], [0] + counts[len(sents) :]
    return unit.alone, unit.joined


def _select(
    ranked: list[_Unit],
    target: int,
    counter: TokenCounter,
    separator_cost: int,
    allow_trim: bool,
    max_span_tokens: int | None = None,
) -> list[_Choice]:
    """Greedy by score within ``target`` estimated tokens; trim what does not fit whole."""
    chosen: list[_Choice] = []
    used = 0
    for unit in ranked:
        overhead = unit.marker_cost + (separator_cost if chosen else 0)
        room = target - used - overhead
        if max_span_tokens is not None and allow_trim:
            room = min(room, max_span_tokens)
        if room <= 0:
            continue
        if unit.estimated and room < unit.tokens <= room + _ESTIMATE_SLACK:
            # Near the edge an estimate may wrongly refuse a unit: count it exactly.
            unit.tokens, unit.estimated = counter.count(unit.text()), False
        if unit.tokens <= room:
            chosen.append(_Choice(unit, 0, len(unit.sentences) - 1))
            used += overhead + unit.tokens
        elif allow_trim and len(unit.sentences) > 1:
            if unit.anchor_tokens is None:
                # Most units never get here; counting their anchors up front is wasted work.
                sliced = unit.slices(counter)
                start, end = unit.sentences[unit.anchor]
                unit.anchor_tokens = (
                    sliced.count(start, end) if sliced is not None else counter.count(unit.text(unit.anchor, unit.anchor))
                )
            if unit.anchor_tokens <= room:
                first, last, cost = _trim(unit, room, counter)
                chosen.append(_Choice(unit, first, last))
                used += overhead + cost
    return chosen


def _trim(unit: _Unit, room: int, counter: TokenCounter) -> tuple[int, int, int]:
    """Grow whole sentences around the anchor while they fit ``room``.

    Returns:
        ``(first, last, estimated tokens)`` of the kept sentences.
    """
    alone, joined = unit.alone, unit.joined
    if alone is None or joined is None:
        alone, joined = _count_sentences(unit, counter)
    n = len(unit.sentences)
    first = last = unit.anchor
    cost = alone[first]
    left_open, right_open = first > 0, last < n - 1
    guide = unit.guide
    while left_open or right_open:
        # Backwards first: the anchor ends the evidence. Scores, when given, may overrule.
        go_left = left_open and (
            not right_open or guide is None or guide[first - 1] >= guide[last + 1]
        )
        if go_left:
            grown = cost - alone[first] + alone[first - 1] + joined[first]
            if grown <= room:
                first, cost = first - 1, grown
                left_open = first > 0
            else:
                left_open = False
        else:
            grown = cost + joined[last + 1]
            if grown <= room:
                last, cost = last + 1, grown
                right_open = last < n - 1
            else:
                right_open = False
    return first, last, cost


def _layout(chosen: list[_Choice], order: PackOrder) -> list[_Choice]:
    by_score = sorted(chosen, key=lambda c: c.unit.sort_key())
    if order == "relevance":
        return by_score
    if order == "edges":
        return by_score[0::2] + by_score[1::2][::-1]
    best_of_doc: dict[str, int] = {}
    for position, choice in enumerate(by_score):
        best_of_doc.setdefault(choice.unit.doc_id, position)
    return sorted(chosen, key=lambda c: (best_of_doc[c.unit.doc_id], c.unit.sentences[c.first][0]))


def _token_starts(counter: TokenCounter, context: str) -> np.ndarray | None:
    """Char offsets where the tokens of ``context`` begin, when the counter reports them."""
    offsets = getattr(counter, "token_starts", None)
    if offsets is None:
        return None
    return np.asarray(offsets(context), dtype=np.int64) if context else np.zeros(0, dtype=np.int64)


def _to_spans(
    choices: list[_Choice], counter: TokenCounter, placed: list[tuple[int, int]], starts: np.ndarray | None,
) -> list[Span]:
    if starts is not None:  # read off the one tokenization of the context
        bounds = np.asarray(placed, dtype=np.int64).reshape(-1, 2)
        counts = (np.searchsorted(starts, bounds[:, 1]) - np.searchsorted(starts, bounds[:, 0])).tolist()
        return [c.unit.to_span(c.first, c.last, n) for c, n in zip(choices, counts)]
    # Units were only estimated when offsets were used; without offsets, count the rest.
    recount = [c for c in choices if c.trimmed or c.unit.estimated]
    counts = count_many(counter, [c.unit.text(c.first, c.last) for c in recount]) if recount else []
    tokens = {id(c): n for c, n in zip(recount, counts)}
    return [c.unit.to_span(c.first, c.last, tokens.get(id(c), c.unit.tokens)) for c in choices]
