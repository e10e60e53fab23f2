"""The scoring rules of DESIGN.md, "How retrieval quality is scored", and nothing else.

Why: every method (hybridctx and the peers) is judged by the character ranges
it packs, with no LLM in the loop. Keeping the rules in one small module makes
them easy to audit and impossible to tune per method:

- evidence sets: a gold range counts when at least 90% of its characters lie
  inside the packed ranges of its document; the score is the fraction found;
- answer-offset sets (drcd, cmrc2018 haystacks): 1 when any gold answer range
  lies fully inside the packed ranges, else 0;
- hotpotqa: a gold paragraph (a whole document) counts when at least 50% of its
  characters are packed; the score is the fraction of gold paragraphs found.

:func:`check_budget` is the other half of fairness: the harness calls it on
every answer, so no method can send more tokens than its budget.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping, Sequence

from hybridctx.errors import BudgetError, InputError
from hybridctx.eval.datasets import QAItem
from hybridctx.packing.tokens import TokenCounter, count_many

__all__ = [
    "ANSWER_FRACTION",
    "DOC_FRACTION",
    "EVIDENCE_FRACTION",
    "PackedRange",
    "answer_hit",
    "check_budget",
    "covered_chars",
    "evidence_recall",
    "mean",
    "merge_ranges",
    "paragraph_recall",
    "score_question",
]

PackedRange = tuple[str, int, int]
"""``(doc_id, start, end)``: a half-open char range of a document's text."""

EVIDENCE_FRACTION = (9, 10)  # >= 90% of an evidence range
ANSWER_FRACTION = (1, 1)  # the whole answer range
DOC_FRACTION = (1, 2)  # >= 50% of a gold paragraph


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of half-open ranges; overlapping or touching ranges merge."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def covered_chars(start: int, end: int, merged: Sequence[tuple[int, int]]) -> int:
    """How many characters of ``[start, end)`` lie inside ``merged`` (a :func:`merge_ranges` result)."""
    total = 0
    for s, e in merged:
        if s >= end:
            break
        total += max(0, min(e, end) - max(s, start))
    return total


def _found(start: int, end: int, merged: Sequence[tuple[int, int]], fraction: tuple[int, int]) -> bool:
    num, den = fraction
    length = end - start
    if length <= 0:  # an empty gold range is found when a packed range holds its position
        return any(s <= start <= e for s, e in merged)
    # integer arithmetic: the 90% boundary must not depend on float rounding
    return covered_chars(start, end, merged) * den >= num * length


def score_question(item: QAItem, ranges: Sequence[PackedRange], docs: Mapping[str, str]) -> float:
    """Score one answer of a method.

    Args:
        item: the question and its gold.
        ranges: the packed ``(doc_id, start, end)`` ranges.
        docs: ``doc_id -> text`` (hotpotqa paragraphs are whole documents).

    Returns:
        A score in ``[0, 1]`` by the rule of ``item.kind``.
    """
    merged = _merged_by_doc(ranges)
    if item.kind == "docs":
        return _paragraph_recall(item, merged, docs) if item.evidence_doc_ids else 0.0
    if item.kind == "answer":
        return _answer_hit(item, merged)
    return _evidence_recall(item, merged) if item.evidence_offsets else 0.0


def evidence_recall(item: QAItem, ranges: Sequence[PackedRange]) -> float | None:
    """Fraction of gold evidence ranges found (>= 90% packed); ``None`` when the item has none."""
    return _evidence_recall(item, _merged_by_doc(ranges)) if item.evidence_offsets else None


def answer_hit(item: QAItem, ranges: Sequence[PackedRange]) -> float | None:
    """1.0 when a gold answer position is fully packed; ``None`` when the item has no answer offsets.

    Reported beside the main score because a whole answer sentence (drcd,
    cmrc2018 evidence) can be cut around the answer, and the answer can be
    packed while most of its sentence is not.
    """
    return _answer_hit(item, _merged_by_doc(ranges)) if item.answer_offsets else None


def paragraph_recall(item: QAItem, ranges: Sequence[PackedRange], docs: Mapping[str, str]) -> float | None:
    """Fraction of gold paragraphs (documents) >= 50% packed; ``None`` for a single-document item."""
    return _paragraph_recall(item, _merged_by_doc(ranges), docs) if item.evidence_doc_ids else None


def _merged_by_doc(ranges: Sequence[PackedRange]) -> dict[str, list[tuple[int, int]]]:
    by_doc: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for doc_id, start, end in ranges:
        by_doc[doc_id].append((start, end))
    return {doc_id: merge_ranges(spans) for doc_id, spans in by_doc.items()}


def _evidence_recall(item: QAItem, merged: Mapping[str, Sequence[tuple[int, int]]]) -> float:
    own = merged.get(item.doc_id, [])
    found = sum(_found(s, e, own, EVIDENCE_FRACTION) for s, e in item.evidence_offsets)
    return found / len(item.evidence_offsets)


def _answer_hit(item: QAItem, merged: Mapping[str, Sequence[tuple[int, int]]]) -> float:
    own = merged.get(item.doc_id, [])
    return float(any(_found(s, e, own, ANSWER_FRACTION) for s, e in item.answer_offsets))


def _paragraph_recall(
    item: QAItem, merged: Mapping[str, Sequence[tuple[int, int]]], docs: Mapping[str, str]
) -> float:
    gold = item.evidence_doc_ids
    found = sum(_found(0, len(docs[d]), merged.get(d, []), DOC_FRACTION) for d in gold)
    return found / len(gold)


def check_budget(
    ranges: Sequence[PackedRange],
    texts: Mapping[str, str],
    budget: int,
    counter: TokenCounter,
    *,
    method: str = "the method",
) -> int:
    """Check that packed ranges are well formed and fit the token budget.

    The total is the sum of the token counts of each range's text, which is
    what a method sends when it lays the ranges out one after another.

    Args:
        ranges: the packed ``(doc_id, start, end)`` ranges.
        texts: ``doc_id -> text``.
        budget: the token budget.
        counter: the tokenizer the budget is stated in.
        method: named in error messages.

    Returns:
        The token total.

    Raises:
        InputError: a range names an unknown document, lies outside its text,
            is empty or reversed, or overlaps another range of its document
            (characters packed twice).
        BudgetError: the token total exceeds ``budget``.
    """
    by_doc: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for doc_id, start, end in ranges:
        if doc_id not in texts:
            raise InputError(f"{method} packed a range of unknown document {doc_id!r}")
        if not 0 <= start < end <= len(texts[doc_id]):
            raise InputError(
                f"{method} packed range ({start}, {end}) of document {doc_id!r}, "
                f"which has {len(texts[doc_id])} chars; ranges must be non-empty and inside the text"
            )
        by_doc[doc_id].append((start, end))
    for doc_id, spans in by_doc.items():
        spans.sort()
        for (_, end_a), (start_b, _) in zip(spans, spans[1:]):
            if start_b < end_a:
                raise InputError(
                    f"{method} packed overlapping ranges of document {doc_id!r} around char {start_b}; "
                    "merge them so no character is sent twice"
                )
    total = sum(count_many(counter, [texts[d][s:e] for d, s, e in ranges])) if ranges else 0
    if total > budget:
        raise BudgetError(
            f"{method} packed {total} tokens ({counter.name}) into a budget of {budget}; "
            "a method must never exceed its budget"
        )
    return total


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; ``nan`` for no values (an empty dataset has no score)."""
    values = list(values)
    return sum(values) / len(values) if values else float("nan")
