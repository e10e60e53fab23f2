"""Fixtures for the LangChain and LlamaIndex plug-ins: a real Alice index, a loopback LLM server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

# The loopback OpenAI-compatible server lives with the LLM tests; reuse it as it is.
_LLM_TESTS = Path(__file__).resolve().parents[1] / "llms"
if str(_LLM_TESTS) not in sys.path:
    sys.path.insert(0, str(_LLM_TESTS))

from loopback_server import LoopbackServer  # noqa: E402

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


@pytest.fixture()
def llm_server() -> Iterator[LoopbackServer]:
    """A fresh OpenAI-compatible server on 127.0.0.1 (random free port) per test."""
    server = LoopbackServer().start()
    try:
        yield server
    finally:
        server.stop()
