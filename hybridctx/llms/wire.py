"""The OpenAI chat-completions wire format: server-sent events, error bodies, retry hints.

Why apart from the client: each server words its errors its own way (vLLM,
SGLang, llama.cpp, Kimi, OpenAI), and the parsing of those strings, of
``Retry-After`` and of an event stream is plain text work, tested and changed
on its own, with no connection in it.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any, Iterator, Mapping, Protocol

__all__ = ["as_int", "context_error_numbers", "error_message", "is_context_error", "retry_after_seconds", "sse_events"]

_CONTEXT_ERROR = re.compile(
    r"context[ _](?:length|window|size)|maximum context|context_length_exceeded|too many tokens"
    r"|exceed_context_size|token limit|longer than the model|prompt is too long",
    re.IGNORECASE,
)
# Where each server puts the window and the token count in its message:
#   OpenAI/vLLM: "maximum context length is 8192 tokens. However, you requested 9000 tokens"
#   SGLang:      "The input (9000 tokens) is longer than the model's context length (8192 tokens)"
#   Kimi:        "Your request exceeded model token limit: 8192"
#   llama.cpp:   JSON fields n_prompt_tokens / n_ctx beside the message
_WINDOW_PATTERNS = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),
    re.compile(r"context (?:length|window|size)(?: of| is|:)? \(?(\d+)", re.IGNORECASE),
    re.compile(r"token limit(?: of|:| is)? (\d+)", re.IGNORECASE),
    re.compile(r"(?:at most|maximum of|max(?:imum)?) (\d+) tokens", re.IGNORECASE),
)
_TOKEN_PATTERNS = (
    re.compile(r"(?:requested|resulted in|has|have|contains?|got|with|sent) (\d+) tokens", re.IGNORECASE),
    re.compile(r"\((\d+) tokens\) is longer", re.IGNORECASE),
    re.compile(r"(\d+) tokens? (?:exceeds?|is longer|are more|were (?:requested|given|sent))", re.IGNORECASE),
)


class _LineReader(Protocol):
    def readline(self) -> bytes: ...


def sse_events(response: _LineReader) -> Iterator[str]:
    """The ``data`` of each server-sent event, up to ``[DONE]`` or the end of the stream."""
    data: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            break
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                event = "\n".join(data)
                data = []
                if event.strip() == "[DONE]":
                    return
                yield event
            continue
        if line.startswith(":"):  # a comment (keep-alive)
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data and "\n".join(data).strip() != "[DONE]":
        yield "\n".join(data)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_message(body: bytes) -> str:
    """The human-readable message of an error body (OpenAI's ``{"error": {"message"}}`` or not)."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip() or "(empty body)"
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error)


def is_context_error(message: str, code: str = "") -> bool:
    """Whether an error's message or code says the prompt exceeds the model window."""
    return bool(_CONTEXT_ERROR.search(message) or _CONTEXT_ERROR.search(code))


def context_error_numbers(fields: Mapping[str, Any], message: str) -> tuple[int | None, int | None]:
    """``(tokens, window)`` as a context-length error states them; ``None`` where it does not."""
    tokens = as_int(fields.get("n_prompt_tokens")) or _first_number(_TOKEN_PATTERNS, message)
    window = as_int(fields.get("n_ctx")) or _first_number(_WINDOW_PATTERNS, message)
    return tokens, window


def _first_number(patterns: tuple[re.Pattern[str], ...], message: str) -> int | None:
    for pattern in patterns:
        match = pattern.search(message)
        if match:
            return int(match.group(1))
    return None


def as_int(value: Any) -> int | None:
    """An integer from JSON (int, integral float or digit string), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
