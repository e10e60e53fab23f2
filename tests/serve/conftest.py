"""Fixtures for the gateway and MCP tests: a real index (packaged encoder), servers on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

# serve_helpers is imported by name from the test modules under any --import-mode (tests/ is not a package).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_helpers import DOCS, OPEN_CLIENTS, SMALL, Served, build_index  # noqa: E402


@pytest.fixture(scope="session")
def index_dirs(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> dict[str, Path]:
    """Two real indexes: ``records`` (three documents with planted facts) and ``note`` (one tiny one)."""
    root = tmp_path_factory.mktemp("serve-indexes")
    return {"records": build_index(root, "records", DOCS, encoder), "note": build_index(root, "note", SMALL, encoder)}


@pytest.fixture(scope="session")
def indexes(index_dirs: dict[str, Path], encoder: Any) -> Iterator[dict[str, Any]]:
    """The two indexes opened with the session's encoder (what ``HybridContext.open`` does, minus a reload)."""
    from hybridctx import HybridContext
    from hybridctx.indexers import LandmarkStore

    opened = {name: HybridContext(LandmarkStore.load(path), encoder, path=str(path)) for name, path in index_dirs.items()}
    yield opened
    for hc in opened.values():
        hc.close()


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().close()


@pytest.fixture()
def serve_app() -> Iterator[Any]:
    """``serve_app(app)`` starts ``app`` on 127.0.0.1 and returns it; all are stopped after the test."""
    started: list[Served] = []

    def start(app: Any) -> Served:
        served = Served(app)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture()
def gateway(indexes: dict[str, Any], serve_app: Any, llm_server: Any) -> Any:
    """``gateway(**settings)``: the gateway over both indexes, in front of ``llm_server`` unless told.

    Defaults suit tests: the gpt-4o-mini profile (128k window, real prices), no upstream retries
    (each fault is seen once), a 30 s deadline.
    """
    from hybridctx.serve.gateway import GatewaySettings, create_app
    from hybridctx.serve.routing_turn import TurnSettings, Upstream

    def start(*, upstream_url: str | None = None, upstream_key: str | None = None, retries: int = 0,
              timeout_s: float = 30.0, limits: Any = None, **settings: Any) -> Served:
        upstream = Upstream(upstream_url or llm_server.base_url, "test-model", api_key=upstream_key,
                            max_retries=retries, backoff_s=0.0, read_timeout_s=min(timeout_s, 30.0))
        turn = TurnSettings(profile="gpt-4o-mini", limits=limits, timeout_s=timeout_s)
        return serve_app(create_app(indexes, GatewaySettings(upstream=upstream, turn=turn, **settings)))

    return start
