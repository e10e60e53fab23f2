"""Growing landmark hits into spans of whole sentences.

Why: a landmark is the *end* of the evidence it stands for. The vector finds
the place; the span carries the evidence. A hit therefore grows mostly
backwards, stays inside its paragraph, and overlapping or adjacent spans merge
so that no sentence is packed twice. A span's score comes from the hits
inside it: its best hit, plus a small share of the others.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hybridctx.errors import ConfigError
from hybridctx.packing.packer import SpanCandidate

__all__ = ["GrowthRule", "SentenceTable", "grow_spans"]


@dataclass(frozen=True)
class SentenceTable:
    """One document's sentences: ``(n,) int64`` arrays, in order."""

    starts: np.ndarray
    ends: np.ndarray
    paragraphs: np.ndarray
    _lists: list[tuple[list[int], list[int], list[int]]] = field(default_factory=list, init=False, repr=False, compare=False)

    def lists(self) -> tuple[list[int], list[int], list[int]]:
        """``starts``, ``ends`` and ``paragraphs`` as Python lists (made once)."""
        if not self._lists:
            self._lists.append((self.starts.tolist(), self.ends.tolist(), self.paragraphs.tolist()))
        return self._lists[0]


@dataclass(frozen=True)
class GrowthRule:
    """How far a hit grows.

    Attributes:
        back: sentences added before the hit.
        forward: sentences added after it.
        within_paragraph: never cross a paragraph break.
        support: share of the other hits' scores a merged span adds to its best.
    """

    back: int = 3
    forward: int = 1
    within_paragraph: bool = True
    support: float = 0.0

    def __post_init__(self) -> None:
        if self.back < 0 or self.forward < 0:
            raise ConfigError(f"span growth back={self.back}, forward={self.forward} must be >= 0")
        if not 0 <= self.support <= 1:
            raise ConfigError(f"span support {self.support} must be between 0 and 1")


def grow_spans(
    hits: Sequence[tuple[str, int, float]],
    sentences_of: Callable[[str], SentenceTable],
    rule: GrowthRule = GrowthRule(),
) -> list[SpanCandidate]:
    """Grow hits into merged, scored span candidates.

    Args:
        hits: ``(doc_id, sentence ordinal, score)``, any order.
        sentences_of: the sentence table of a document.
        rule: growth and scoring rule.

    Returns:
        Candidates, best first; each covers consecutive whole sentences and
        carries its anchor (the best hit) and per-sentence scores for trimming.
    """
    by_doc: dict[str, list[tuple[int, float]]] = {}
    for doc_id, ordinal, score in hits:
        by_doc.setdefault(doc_id, []).append((int(ordinal), float(score)))
    out: list[SpanCandidate] = []
    for doc_id, doc_hits in by_doc.items():
        table = sentences_of(doc_id)
        out.extend(_grow_doc(doc_id, doc_hits, table, rule))
    out.sort(key=lambda c: (-c.score, c.doc_id, c.sentences[0][0]))
    return out


def _grow_doc(doc_id: str, hits: list[tuple[int, float]], table: SentenceTable, rule: GrowthRule) -> list[SpanCandidate]:
    # Plain lists: this runs for every hit of every query, and numpy scalar indexing
    # in a Python loop cost more than the arithmetic.
    starts, ends, paragraphs = table.lists()
    n = len(starts)
    best: dict[int, float] = {}
    for ordinal, score in hits:
        if 0 <= ordinal < n:
            best[ordinal] = max(score, best.get(ordinal, float("-inf")))
    by_ordinal = sorted(best.items())
    intervals = []
    for ordinal, _ in by_ordinal:
        lo, hi = max(0, ordinal - rule.back), min(n - 1, ordinal + rule.forward)
        if rule.within_paragraph:
            para = paragraphs[ordinal]
            while paragraphs[lo] != para:
                lo += 1
            while paragraphs[hi] != para:
                hi -= 1
        intervals.append((lo, hi))
    intervals.sort()
    merged: list[list[int]] = []
    for lo, hi in intervals:
        if merged and lo <= merged[-1][1] + 1 and (not rule.within_paragraph or paragraphs[lo] == paragraphs[merged[-1][1]]):
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    ordinals = [o for o, _ in by_ordinal]
    out = []
    for lo, hi in merged:
        window = by_ordinal[bisect_left(ordinals, lo) : bisect_right(ordinals, hi)]
        inside = sorted(window, key=lambda x: -x[1])
        top_ordinal, top = inside[0]
        score = top + rule.support * sum(s for _, s in inside[1:])
        # Sentences come from the table in order and non-empty, the anchor lies inside:
        # the candidate's own checks would only repeat that.
        out.append(
            SpanCandidate.checked_elsewhere(
                doc_id, score, tuple(zip(starts[lo : hi + 1], ends[lo : hi + 1])), top_ordinal - lo,
                _sentence_scores(lo, hi, inside), lo,
            )
        )
    return out


_BACK_SHARE = tuple(0.8**d for d in range(64))  # share a hit lends d sentences before it
_FORWARD_SHARE = tuple(0.5**d for d in range(64))  # ... and d sentences after it


def _sentence_scores(lo: int, hi: int, inside: list[tuple[int, float]]) -> tuple[float, ...]:
    # A hit lends its score to the sentences before it (the evidence it ends),
    # fading with distance; sentences after it get a smaller share.
    n = hi - lo + 1
    scores = [0.0] * n
    for ordinal, score in inside:
        pos = ordinal - lo
        for k in range(n):
            dist = pos - k
            if dist >= 0:
                share = _BACK_SHARE[dist] if dist < 64 else 0.8**dist
            else:
                share = _FORWARD_SHARE[-dist] if -dist < 64 else 0.5 ** (-dist)
            value = score * share
            if value > scores[k]:
                scores[k] = value
    return tuple(scores)
