"""The contrastive objective: InfoNCE over a batch's landmarks, with position-aware targets.

Why position-aware: span growth (hybridctx.retrieval.spans) grows a hit backwards more
than forwards, which assumes a hit marks the *end* of the evidence. For a gold
run of consecutive landmarks the target puts weight ``w_i ∝ exp(α·i)`` on the
run's ``i``-th landmark, so the last one is the most wanted (``α = 0`` is the
plain target: the run's landmarks alike). Every other landmark of the batch is
a negative, and the batch is built from whole windows of the gold documents,
so the hardest negatives (the same window, the same document) are always in it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["gold_runs", "info_nce", "position_weights"]


def gold_runs(indices: Sequence[int]) -> list[list[int]]:
    """Split sorted landmark indices into runs of consecutive ones."""
    runs: list[list[int]] = []
    for i in sorted(set(int(x) for x in indices)):
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def position_weights(length: int, alpha: float) -> list[float]:
    """``w_i ∝ exp(α·i)`` over a run of ``length`` landmarks, summing to 1."""
    raw = [math.exp(alpha * (i - (length - 1))) for i in range(length)]  # shifted: no overflow
    total = sum(raw)
    return [w / total for w in raw]


def info_nce(queries: Any, landmarks: Any, targets: Any, temperature: float) -> Any:
    """Soft-target cross-entropy of ``softmax(q·l / τ)`` against ``targets``.

    Args:
        queries: ``(m, d)`` L2-normalised query vectors.
        landmarks: ``(n, d)`` L2-normalised landmark vectors.
        targets: ``(m, n)`` rows summing to 1 (the gold weights).
        temperature: τ.
    """
    import torch

    logits = queries @ landmarks.T / temperature
    return -(targets * torch.log_softmax(logits.float(), dim=1)).sum(1).mean()
