"""Fixtures for the LangChain and LlamaIndex plug-ins: a real Alice index (``llm_server``: tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "hybridctx" / "samples"


@pytest.fixture(scope="session")
def alice_index(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> Path:
    """The bundled Alice text indexed once (real encoder, real FAISS)."""
    from hybridctx import HybridContext

    index_dir = tmp_path_factory.mktemp("integrations") / "alice.idx"
    HybridContext.build([SAMPLES / "alice_in_wonderland.txt"], index_dir, encoder=encoder, show_progress=False)
    return index_dir


@pytest.fixture(scope="session")
def alice_hc(alice_index: Path, encoder: Any) -> Any:
    """The Alice index opened on the main thread, sharing the session's encoder."""
    from hybridctx import HybridContext
    from hybridctx.indexers import LandmarkStore

    return HybridContext(LandmarkStore.load(alice_index), encoder, path=str(alice_index))


@pytest.fixture(scope="session")
def alice_questions() -> list[dict[str, str]]:
    lines = (SAMPLES / "alice_questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]

