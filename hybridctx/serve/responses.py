"""OpenAI's response shapes, as the gateway sends them: completions, stream chunks, errors.

Why its own module: every client library parses these shapes, so they are
written in one place, exactly as OpenAI's API reference gives them, with the
``hybridctx`` extension added as one more field (which the libraries keep
and ignore).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

__all__ = ["chunk", "completion", "error_body", "models_list", "new_id", "sse"]


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(cid: str, model: str, text: str, finish_reason: str, usage: dict[str, int],
               extension: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed ``chat.completion``."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage,
        "hybridctx": extension,
    }


def chunk(cid: str, model: str, created: int, *, delta: dict[str, Any] | None = None,
          finish_reason: str | None = None, usage: dict[str, int] | None = None,
          extension: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``usage`` makes it the usage chunk (no choices)."""
    out: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
    if usage is not None:
        out["choices"] = []
        out["usage"] = usage
    else:
        out["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason, "logprobs": None}]
    if extension is not None:
        out["hybridctx"] = extension
    return out


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event: ``data: <json>`` and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n".encode("utf-8")


def error_body(message: str, *, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def models_list(names: list[str], created: int) -> dict[str, Any]:
    """``GET /v1/models``: one model per index."""
    return {"object": "list",
            "data": [{"id": name, "object": "model", "created": created, "owned_by": "hybridctx"} for name in names]}
