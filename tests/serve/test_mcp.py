"""`hybridctx mcp` with the official MCP SDK's client: over stdio (the client spawns
``python -m hybridctx.cli mcp --index ...``, as a desktop agent does) and over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

mcp = pytest.importorskip("mcp")
pytest.importorskip("mcp.server.mcpserver")  # the 2.x server API

from serve_helpers import DOC_TEXT, FACTS  # noqa: E402

pytestmark = pytest.mark.heavy

REPO = Path(__file__).resolve().parents[2]
TOOLS = {"retrieve", "route", "list_documents", "read_span"}


async def _exercise(client: Any) -> dict[str, Any]:
    """Calls every tool once (plus two mistakes) and returns what came back."""
    out: dict[str, Any] = {}
    listed = await client.list_tools()
    out["tools"] = {t.name: t for t in listed.tools}
    out["retrieve"] = await client.call_tool("retrieve", {"query": "Who rings the copper bell at noon?",
                                                          "budget": 120, "index": "records"})
    out["filtered"] = await client.call_tool("retrieve", {"query": "Who rings the copper bell at noon?",
                                                          "budget": 120, "doc_ids": ["library"]})
    out["route"] = await client.call_tool("route", {"query": "Summarise every record", "index": "records"})
    out["documents"] = await client.call_tool("list_documents", {"limit": 2})
    out["note"] = await client.call_tool("list_documents", {"index": "note"})
    start = DOC_TEXT["library"].index(FACTS["library"])
    out["span"] = await client.call_tool("read_span", {"doc_id": "library", "start": start,
                                                       "end": start + len(FACTS["library"])})
    out["bad_span"] = await client.call_tool("read_span", {"doc_id": "library", "start": 10, "end": 10**7})
    out["bad_doc"] = await client.call_tool("retrieve", {"query": "x", "doc_ids": ["atlantis"]})
    return out


def _check(out: dict[str, Any]) -> None:
    assert set(out["tools"]) == TOOLS
    assert all(t.annotations.read_only_hint for t in out["tools"].values())
    assert "query" in out["tools"]["retrieve"].input_schema["required"]
    found = out["retrieve"]
    assert not found.is_error
    packed = found.structured_content
    assert packed["tokens"] <= 120 and packed["context"].startswith("[1] ")
    top = packed["spans"][0]
    assert top["marker"] == 1 and top["doc_id"] == "harbour" and FACTS["harbour"] in top["text"]
    assert DOC_TEXT["harbour"][top["start"]:top["end"]] == top["text"]
    assert json.loads(found.content[0].text) == packed  # the same result as text, for clients without structure
    assert {s["doc_id"] for s in out["filtered"].structured_content["spans"]} == {"library"}
    decision = out["route"].structured_content
    assert decision["mode"] == "full" and decision["intent"] == "summarise"
    assert set(decision["estimates"]) == {"full", "retrieval"} and decision["reason"]
    listing = out["documents"].structured_content
    assert listing["total"] == 3 and [d["doc_id"] for d in listing["documents"]] == ["garden", "harbour"]
    assert listing["documents"][0]["chars"] == len(DOC_TEXT["garden"])
    assert [d["doc_id"] for d in out["note"].structured_content["documents"]] == ["note"]
    assert out["span"].structured_content["text"] == FACTS["library"]
    assert out["bad_span"].is_error and "outside document 'library'" in out["bad_span"].content[0].text
    assert out["bad_doc"].is_error and "atlantis" in out["bad_doc"].content[0].text


def test_stdio_server_spawned_by_the_sdk_client(index_dirs: dict[str, Path], tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    # The SDK passes on only a few variables; these keep the child offline and on the test's caches.
    keep = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HYBRIDCTX_CACHE", "HYBRIDCTX_CONFIG", "TOKENIZERS_PARALLELISM")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "hybridctx.cli", "mcp", "--index", f"records={index_dirs['records']}",
              "--index", f"note={index_dirs['note']}"],
        env={k: os.environ[k] for k in keep if k in os.environ}, cwd=str(REPO))

    async def run() -> dict[str, Any]:
        with open(tmp_path / "server.log", "w", encoding="utf-8") as errlog:
            async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=120) as client:
                assert client.server_info.name == "hybridctx"
                return await _exercise(client)

    out = asyncio.run(run())
    _check(out)
    log = (tmp_path / "server.log").read_text(encoding="utf-8")
    assert "Traceback" not in log


def test_streamable_http_server(indexes: dict[str, Any], serve_app: Any) -> None:
    pytest.importorskip("uvicorn")
    from mcp import Client

    from hybridctx.serve.mcp import build_mcp_server

    server = build_mcp_server(indexes)
    served = serve_app(server.streamable_http_app(host="127.0.0.1"))

    async def run() -> dict[str, Any]:
        async with Client(f"{served.url}/mcp", read_timeout_seconds=60) as client:
            return await _exercise(client)

    _check(asyncio.run(run()))
