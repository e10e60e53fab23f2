"""Training landmark encoders (``hybridctx train``): data, objective, trainer, model card.

Why a subpackage: training needs torch with gradients, optimisers and data
handling that serving never loads; nothing here is imported by indexing or
retrieval. The trainer reads documents through the very window planner and
pooling code that indexing uses (:mod:`hybridctx.embeddings.pooling`), so the
model is trained on the vectors it will serve.
"""

from __future__ import annotations

from hybridctx.errors import HybridCtxError

__all__ = ["TrainingError"]


class TrainingError(HybridCtxError, RuntimeError):
    """Training stopped: the loss became NaN/inf or diverged."""
