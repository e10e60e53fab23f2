"""Token counts of slices of a document, from one tokenization of the whole of it.

Why: packing weighs many candidate spans (up to a few hundred per query) and
counting each one with the tokenizer was a third of a query's latency. A
document is tokenized once (cached), and the count of any slice is read off the
token start offsets with a binary search. That count is an estimate (BPE may
split a slice's edges differently from the whole text, typically by one token),
so packing uses it only to choose spans and then counts the rendered context
exactly: the budget guarantee does not rest on it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["SliceCounts", "slice_counts"]

_CACHE_TOKENS = 16_000_000  # token offsets kept per process, across documents
_LOCK = threading.Lock()
_CACHE: "OrderedDict[tuple[str, str, int, str], SliceCounts]" = OrderedDict()
_CACHED_TOKENS = 0


class SliceCounts:
    """Token start offsets (in characters) of one document in one tokenizer.

    Args:
        starts: ``(n,) int64`` char offset where each token begins, ascending.
        length: the document's length in chars.
    """

    __slots__ = ("starts", "length")

    def __init__(self, starts: np.ndarray, length: int) -> None:
        self.starts = starts
        self.length = length

    def count(self, start: int, end: int) -> int:
        """Estimated tokens of ``text[start:end]``: the tokens that overlap it."""
        if end <= start:
            return 0
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        last = int(np.searchsorted(self.starts, end, side="left"))
        return max(1, last - max(first, 0))

    def counts(self, bounds: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`count` over ``(m, 2)`` start/end pairs."""
        bounds = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
        first = np.maximum(np.searchsorted(self.starts, bounds[:, 0], side="right") - 1, 0)
        last = np.searchsorted(self.starts, bounds[:, 1], side="left")
        out = np.maximum(last - first, 1)
        out[bounds[:, 1] <= bounds[:, 0]] = 0
        return out


def slice_counts(counter: Any, doc_id: str, text: str) -> SliceCounts | None:
    """The (cached) slice counts of ``text`` in ``counter``, or ``None`` when the
    counter cannot report token offsets."""
    offsets = getattr(counter, "token_starts", None)
    if offsets is None:
        return None
    key = (counter.name, doc_id, len(text), text[:64] + text[-64:])
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    made = SliceCounts(np.asarray(offsets(text), dtype=np.int64), len(text))
    _remember(key, made)
    return made


def _remember(key: tuple[str, str, int, str], made: SliceCounts) -> None:
    global _CACHED_TOKENS
    with _LOCK:
        if key in _CACHE:
            return
        _CACHE[key] = made
        _CACHED_TOKENS += len(made.starts)
        while _CACHED_TOKENS > _CACHE_TOKENS and len(_CACHE) > 1:
            _, old = _CACHE.popitem(last=False)
            _CACHED_TOKENS -= len(old.starts)
