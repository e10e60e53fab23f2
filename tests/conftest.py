"""Test-session set-up: offline hubs, no telemetry, one encoder per session."""

from __future__ import annotations

import os

# Set before any library that reads them is imported: nothing may reach a hub.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    # PostgreSQL 16, the version the pgvector store is specified against: pgserver 0.6 ships 16
    # and 18 and starts 18 unless told (read at its import); =18 runs the store suite on 18.
    "PGSERVER_POSTGRES_VERSION": "16",
    # The store-trust key (indexers/vectors/store_trust.py) of this test session, not the user's.
    "HYBRIDCTX_CONFIG": __import__("tempfile").mkdtemp(prefix="hybridctx-test-config-"),
}.items():
    os.environ.setdefault(_key, _value)
for _key in ("LANGCHAIN_TRACING_V2", "LANGSMITH_TRACING", "NLTK_DATA"):
    os.environ.pop(_key, None)
# Derived files (the ONNX export of the encoder, the vector cache) go to this session's own cache,
# not the user's nor a fixed shared path: warm for every test and child process of the session
# (they inherit the variable), removed at its end (pytest_unconfigure). One given by the caller is kept.
_SESSION_CACHE = None
if not os.environ.get("HYBRIDCTX_CACHE"):
    _SESSION_CACHE = __import__("tempfile").mkdtemp(prefix="hybridctx-test-cache-")
    os.environ["HYBRIDCTX_CACHE"] = _SESSION_CACHE

import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterator  # noqa: E402

import pytest  # noqa: E402

# The loopback OpenAI-compatible server (tests/llms/) serves the LLM, plug-in and example tests;
# make it importable by name under any --import-mode (tests/ is not a package).
_LLM_TESTS = Path(__file__).resolve().parent / "llms"
if str(_LLM_TESTS) not in sys.path:
    sys.path.insert(0, str(_LLM_TESTS))

from loopback_server import LoopbackServer  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLES = Path(__file__).resolve().parents[1] / "hybridctx" / "samples"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove this session's cache (see the top of this file)."""
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def encoder():
    """The real packaged encoder (all-MiniLM-L6-v2), loaded once."""
    from hybridctx.embeddings import WindowedLandmarkEncoder

    enc = WindowedLandmarkEncoder(device="cpu")
    _ = enc.dim  # load now, once
    return enc


@pytest.fixture(scope="session")
def alice_text() -> str:
    return (SAMPLES / "alice_in_wonderland.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture()
def llm_server() -> Iterator[LoopbackServer]:
    """A fresh OpenAI-compatible server on 127.0.0.1 (random free port) per test."""
    with LoopbackServer() as server:
        yield server
