"""Pooling a window's token states into sentence vectors, as differentiable torch code.

Why its own module: indexing and training must make a landmark vector the
same way, or a model trained on one reading is served another. The windowed
encoder (serving, no gradients) and the trainer (gradients) both call these
functions on a window's hidden states; nothing here loads a model.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["owned_sentences", "pool_window", "window_positions", "window_sequence"]


def owned_sentences(assignment: np.ndarray, n_windows: int) -> list[np.ndarray]:
    """Per window, the indices of the sentences read from it (``WindowPlan.assignment``)."""
    order = np.argsort(assignment, kind="stable")
    bounds = np.searchsorted(assignment[order], np.arange(n_windows + 1))
    return [order[bounds[w] : bounds[w + 1]] for w in range(n_windows)]


def window_sequence(ids: np.ndarray, window: Sequence[int], prefix: Sequence[int], suffix: Sequence[int]) -> list[int]:
    """The token ids the model reads for one window: specials around ``ids[a:b]``."""
    a, b = int(window[0]), int(window[1])
    return list(prefix) + ids[a:b].tolist() + list(suffix)


def window_positions(window: Sequence[int], ranges: np.ndarray, n_prefix: int) -> tuple[np.ndarray, np.ndarray]:
    """Where sentences lie in the window's sequence: ``(starts, ends)`` positions, clipped to the window.

    Args:
        window: the window's document token range ``(a, b)``.
        ranges: ``(k, 2)`` document token ranges of the sentences read from it.
        n_prefix: special tokens before the window's first token.
    """
    a, b = int(window[0]), int(window[1])
    ts = np.clip(ranges[:, 0], a, b - 1) - a + n_prefix
    te = np.clip(ranges[:, 1], a + 1, b) - a + n_prefix
    return ts.astype(np.int64), te.astype(np.int64)


def pool_window(hidden: Any, starts: np.ndarray, ends: np.ndarray, *, landmark: bool) -> Any:
    """Sentence vectors from one window's ``(T, dim)`` torch states (not normalised).

    ``landmark``: the state at each sentence's last token (its inserted
    landmark); else the mean of the states of ``[start, end)``. Gradients flow
    through both. A numpy ``hidden`` (ONNX Runtime's output, served without
    gradients) is pooled by the same arithmetic in numpy: a few small torch
    calls per window wake torch's thread pool, which then competes with ONNX
    Runtime's for the same cores (measured: docs/encoders.md#indexing-speed-issue-12-deliverable-4).
    """
    if isinstance(hidden, np.ndarray):
        if landmark:
            return hidden[ends - 1]
        sums = np.zeros((hidden.shape[0] + 1, hidden.shape[1]), dtype=hidden.dtype)
        np.cumsum(hidden, axis=0, out=sums[1:])
        return (sums[ends] - sums[starts]) / (ends - starts)[:, None].astype(hidden.dtype)
    import torch

    te = torch.as_tensor(ends, device=hidden.device)
    if landmark:
        return hidden[te - 1]
    ts = torch.as_tensor(starts, device=hidden.device)
    cs = torch.cat([torch.zeros_like(hidden[:1]), hidden.cumsum(0)], 0)
    return (cs[te] - cs[ts]) / (te - ts).unsqueeze(1).to(hidden.dtype)
