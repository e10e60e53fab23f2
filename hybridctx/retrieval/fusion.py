"""Fusing ranked lists from dense and lexical search into one ranking.

Why: dense landmark vectors find paraphrases, BM25 finds rare exact words
(names, numbers, and all of Chinese when the encoder cannot read it). Each
ranking is only trusted by rank, so scores on different scales never mix.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["reciprocal_rank_fusion"]


def reciprocal_rank_fusion(
    rankings: Sequence[np.ndarray], weights: Sequence[float] | None = None, k: float = 60.0
) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion: ``score(r) = sum_i w_i / (k + rank_i(r))``.

    Args:
        rankings: each an ``(n_i,) int64`` array of row ids, best first
            (negative ids are padding and ignored).
        weights: one weight per ranking (default all 1).
        k: the damping constant; larger values flatten the head of each list.

    Returns:
        ``(rows, scores)``: ``(m,) int64`` and ``(m,) float64``, best first.
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        if weight == 0:
            continue
        for rank, row in enumerate(np.asarray(ranking).tolist()):
            if row < 0:
                continue
            scores[row] = scores.get(row, 0.0) + weight / (k + rank + 1)
    if not scores:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    rows = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
    vals = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    order = np.lexsort((rows, -vals))
    return rows[order], vals[order]
