"""Planning the overlapping windows a document is read in (pure index arithmetic).

Why: the encoder sees a long document through windows of its maximum length.
Every sentence must lie whole inside some window, and should be read where it
has the most preceding context. Keeping the plan separate from the model makes
the invariants testable without weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WindowPlan", "plan_windows", "sentence_token_ranges"]


@dataclass(frozen=True)
class WindowPlan:
    """Windows over one document's token sequence.

    Attributes:
        windows: ``(n_windows, 2) int64`` token ranges ``[a, b)``.
        assignment: ``(n_sentences,) int64`` window index each sentence is read from.
    """

    windows: np.ndarray
    assignment: np.ndarray


def sentence_token_ranges(
    token_offsets: np.ndarray, sentences: np.ndarray
) -> np.ndarray:
    """Map sentences' char ranges to token ranges.

    Args:
        token_offsets: ``(n_tokens, 2) int64`` char offsets of each token, in order.
        sentences: ``(n_sentences, 2) int64`` char ranges, in order, non-overlapping.

    Returns:
        ``(n_sentences, 2) int64`` token ranges ``[ts, te)``; a sentence whose
        characters produced no token of its own borrows the nearest token so
        that it still has something to pool.
    """
    n_tokens = len(token_offsets)
    if len(sentences) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if n_tokens == 0:
        raise ValueError("a document with sentences produced no tokens")
    tok_starts = token_offsets[:, 0]
    tok_ends = token_offsets[:, 1]
    # First token ending after the sentence start; first token starting at/after its end.
    ts = np.searchsorted(tok_ends, sentences[:, 0], side="right")
    te = np.searchsorted(tok_starts, sentences[:, 1], side="left")
    ts = np.minimum(ts, n_tokens - 1)
    te = np.maximum(te, ts + 1)
    te = np.minimum(te, n_tokens)
    ts = np.minimum(ts, te - 1)
    return np.stack([ts, te], axis=1).astype(np.int64)


def plan_windows(token_ranges: np.ndarray, n_tokens: int, length: int, overlap: int,
                 *, end_at_sentence: bool = False) -> WindowPlan:
    """Greedy windows: each new window starts ``overlap`` tokens before the
    first sentence the previous window could not hold whole.

    A sentence is read from the first window holding it whole, which is the one
    where it has the most preceding context; every sentence except the first
    few gets at least ``overlap`` tokens of context, unless it is too long to
    fit after them (it then starts a window of its own). A sentence longer than
    ``length`` is read from a window starting at its first token (truncated).

    Args:
        token_ranges: ``(n, 2) int64`` sentence token ranges, in order.
        n_tokens: tokens in the document.
        length: window length in tokens (without special tokens).
        overlap: tokens of preceding context kept for the first sentence of a
            new window, ``0 <= overlap < length``.
        end_at_sentence: end each window at the last sentence it reads from
            (the last sentence it holds whole) instead of at ``length``. The
            cut sentence after it is read again, whole, by the next window, so
            here it was only right-hand context: dropping it reads fewer tokens
            for the same landmarks. A sentence longer than ``length`` still
            fills its window.
    """
    if not 0 <= overlap < length:
        raise ValueError(f"overlap {overlap} must be in [0, {length})")
    n = len(token_ranges)
    assignment = np.zeros(n, dtype=np.int64)
    windows: list[tuple[int, int]] = []
    starts = token_ranges[:, 0] if n else np.zeros(0, dtype=np.int64)
    ends = token_ranges[:, 1] if n else np.zeros(0, dtype=np.int64)
    i, a = 0, 0
    while i < n:
        b = min(a + length, n_tokens)
        j = int(np.searchsorted(ends, b, side="right"))
        if j <= i:
            # Sentence i does not fit after the overlap: start the window at it.
            a = int(starts[i])
            b = min(a + length, n_tokens)
            j = max(int(np.searchsorted(ends, b, side="right")), i + 1)
        if end_at_sentence:
            b = min(b, int(ends[j - 1]))
        windows.append((a, b))
        assignment[i:j] = len(windows) - 1
        if j >= n:
            break
        a = max(int(starts[j]) - overlap, a + 1)
        i = j
    return WindowPlan(np.asarray(windows, dtype=np.int64).reshape(-1, 2), assignment)
