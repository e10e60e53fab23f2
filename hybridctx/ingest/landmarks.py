"""From a document to its landmarks: sentences, split to fit the encoder.

Why here and not in segmentation: the longest landmark depends on the encoder
(its window, its tokenizer), and the encoder's one tokenizer pass over the
document is reused for it rather than tokenising twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybridctx.datatypes import Document, Landmark
from hybridctx.ingest.segmentation import paragraph_numbers, split_long_sentences, split_sentences

__all__ = ["DocumentLandmarks", "landmarks_for"]


@dataclass(frozen=True)
class DocumentLandmarks:
    """A document's landmarks and the token count of each (encoder tokenizer)."""

    document: Document
    landmarks: list[Landmark]
    sentences: np.ndarray  # (n, 2) int64 char ranges
    tokens: np.ndarray  # (n,) int64 encoder tokens per landmark


def landmarks_for(document: Document, token_offsets: np.ndarray, max_tokens: int) -> DocumentLandmarks:
    """Segment a document into landmarks no longer than ``max_tokens``.

    Args:
        document: the document (its text is never altered).
        token_offsets: ``(n_tokens, 2) int64`` char offsets of the encoder's tokens.
        max_tokens: the longest landmark, in encoder tokens.
    """
    text = document.text
    spans = split_sentences(text)
    offsets = [(int(a), int(b)) for a, b in token_offsets]
    spans = split_long_sentences(spans, offsets, max_tokens, text)
    paragraphs = paragraph_numbers(text, spans)
    sentences = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if len(token_offsets):
        starts = np.searchsorted(token_offsets[:, 1], sentences[:, 0], side="right")
        ends = np.searchsorted(token_offsets[:, 0], sentences[:, 1], side="left")
        tokens = np.maximum(ends - starts, 1)
    else:
        tokens = np.ones(len(sentences), dtype=np.int64)
    landmarks = [
        Landmark(document.doc_id, i, int(a), int(b), int(p))
        for i, ((a, b), p) in enumerate(zip(spans, paragraphs))
    ]
    return DocumentLandmarks(document, landmarks, sentences, tokens.astype(np.int64))
