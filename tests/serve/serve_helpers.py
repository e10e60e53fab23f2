"""Shared by the gateway and MCP tests: the documents, building an index, serving an app on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

TOPICS = ["lantern", "bridge", "orchard", "mill", "quarry", "ferry", "archive", "bakery", "tower", "market"]
FACTS = {
    "garden": "The north gate of the walled garden is painted cobalt blue.",
    "harbour": "The harbour master, Ines Falk, rings the copper bell at noon.",
    "library": "The reading room of the old library holds exactly 412 maps.",
}


def _document(doc_id: str, fact: str) -> str:
    """About 900 tokens of distinct filler sentences with one planted fact in the middle."""
    lines = []
    for i in range(60):
        topic = TOPICS[i % len(TOPICS)]
        lines.append(f"In the {doc_id} records, entry {i} notes that the {topic} was inspected in week {i * 7 % 52} "
                     f"and found in {['good', 'fair', 'poor'][i % 3]} order by clerk number {100 + i}.")
        if i == 30:
            lines.append(fact)
    return " ".join(lines)


DOCS = [{"doc_id": doc_id, "title": doc_id.title(), "text": _document(doc_id, fact)} for doc_id, fact in FACTS.items()]
DOC_TEXT = {d["doc_id"]: d["text"] for d in DOCS}
SMALL = [{"doc_id": "note", "text": "The lighthouse keeper feeds the gulls at dawn. The keeper's cat is called Biscuit."}]

#: Limits that make retrieval win on DOCS (~6,000 tokens): a 96-token budget, full context never "cheap".
FORCE_RETRIEVAL = {"cheap_full_ratio": 1.0, "default_budget": 96, "min_budget": 32, "retrieval_share": None}
#: Limits that send the whole corpus whenever it fits the window.
FORCE_FULL = {"prefer_full_under_tokens": 10_000_000}


def build_index(root: Path, name: str, docs: list[dict[str, Any]], encoder: Any) -> Path:
    from hybridctx import HybridContext

    src = root / f"{name}.jsonl"
    src.write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    HybridContext.build([src], root / name, encoder=encoder, show_progress=False)
    return root / name


class Served:
    """An ASGI app under uvicorn on a free port of 127.0.0.1, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="warning", ws="none",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="serve-test-uvicorn", daemon=True)
        self.thread.start()
        ends = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > ends:
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


#: Every client made by ``client_for``; closed after each test (conftest), so no socket is left to the GC.
OPEN_CLIENTS: list[Any] = []


def client_for(served: Served, key: str = "no-key", **options: Any) -> Any:
    """The official OpenAI client pointed at a served gateway (no client-side retries)."""
    import openai

    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0, timeout=60, **options)
    OPEN_CLIENTS.append(client)
    return client
