"""The OpenAI chat-completions wire format: server-sent events, error bodies, retry hints.

Why apart from the client: each server words its errors its own way (vLLM,
SGLang, llama.cpp, Kimi, OpenAI), and the parsing of those strings, of
``Retry-After`` and of an event stream is plain text work, tested and changed
on its own, with no connection in it. So is making server text safe to show:
one line, bounded, with anything that looks like a credential taken out.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any, Iterable, Iterator, Mapping, Protocol

__all__ = [
    "EventStream",
    "as_int",
    "context_error_numbers",
    "error_message",
    "is_context_error",
    "retry_after_seconds",
    "server_text",
    "sse_events",
]

#: The most characters of server text an error message quotes.
SERVER_TEXT_LIMIT = 300
#: The longest line an event stream may send (one chunk of JSON); longer is a fault.
MAX_EVENT_LINE = 1 << 20
# Credentials as servers and gateways echo them: "Bearer <token>", provider keys
# (OpenAI/Anthropic/Moonshot "sk-...", others "pk-", "rk-"), and "api_key": "<value>".
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
_PROVIDER_KEY = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}")
_LABELLED = re.compile(
    r"\b(api[_-]?key|access[_-]?token|x-api-key|secret|password)([\"']?\s*[:=]\s*[\"']?)([^\s\"',;&]{6,})",
    re.IGNORECASE,
)
_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_TAG = re.compile(r"<[^<>]{0,2000}>")
_REDACTED = "[redacted]"

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
    def readline(self, size: int = -1, /) -> bytes: ...


class EventStream:
    """The ``data`` of each server-sent event, and how the stream ended.

    Iterating yields each complete event's data up to ``data: [DONE]`` or the
    end of the stream. An OpenAI stream is whole only when it ends with
    ``[DONE]`` (or a ``finish_reason``, which the caller sees); a stream that
    stops inside an event, or without ``[DONE]``, was cut.

    Attributes:
        done: ``data: [DONE]`` was read.
        tail: the data of an event the stream ended inside (no blank line
            closed it), else ``None``.

    Raises (while iterating):
        UnicodeDecodeError: a line is not UTF-8.
        ValueError: a line is longer than ``max_line`` bytes.
    """

    def __init__(self, response: _LineReader, *, max_line: int = MAX_EVENT_LINE) -> None:
        self._response = response
        self._max_line = max_line
        self.done = False
        self.tail: str | None = None

    def __iter__(self) -> Iterator[str]:
        data: list[str] = []
        while True:
            raw = self._response.readline(self._max_line + 1)
            if not raw:
                break
            if len(raw) > self._max_line:
                raise ValueError(f"a line of the event stream is longer than {self._max_line} bytes")
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data:
                    event = "\n".join(data)
                    data = []
                    if event.strip() == "[DONE]":
                        self.done = True
                        return
                    yield event
                continue
            if line.startswith(":"):  # a comment (keep-alive)
                continue
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
        if data:
            tail = "\n".join(data)
            if tail.strip() == "[DONE]":
                self.done = True
            else:
                self.tail = tail


def sse_events(response: _LineReader) -> Iterator[str]:
    """The ``data`` of each server-sent event, up to ``[DONE]`` or the end of the stream
    (an unterminated last event included)."""
    stream = EventStream(response)
    yield from stream
    if stream.tail is not None:
        yield stream.tail


def server_text(raw: bytes | str, *, secrets: Iterable[str | None] = (), limit: int = SERVER_TEXT_LIMIT,
                html: bool = False) -> str:
    """Text a server sent, made safe to put in an error message.

    One line (newlines, tabs and control characters become spaces, terminal
    escapes are dropped), at most ``limit`` characters, and with every
    credential taken out: each of ``secrets`` (the configured API key; eight
    characters or more) and anything shaped like one (``Bearer <token>``,
    ``sk-...``, ``"api_key": "<value>"``).

    Args:
        raw: the body or message, as bytes (decoded as UTF-8, bad bytes
            replaced) or text.
        secrets: values to redact wherever they appear.
        limit: the most characters returned.
        html: drop HTML tags first (a proxy's error page).
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    window = 64 * 1024  # plenty for the first `limit` characters once folded
    redact = [s for s in secrets if s is not None and len(s) >= 8]
    if len(text) > window:
        text = text[:window]
        for secret in redact:  # a secret cut in two by the window must not show its first half
            for n in range(len(secret) - 1, 3, -1):
                if text.endswith(secret[:n]):
                    text = text[:-n]
                    break
    text = _ANSI.sub("", text)
    if html:
        text = _TAG.sub(" ", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    for secret in redact:
        text = text.replace(secret, _REDACTED)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {_REDACTED}", text)
    text = _PROVIDER_KEY.sub(_REDACTED, text)
    text = _LABELLED.sub(lambda m: f"{m.group(1)}{m.group(2)}{_REDACTED}", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: max(limit - 4, 0)].rstrip() + " ..."
    return text or "(empty)"


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
    """The human-readable message of an error body (OpenAI's ``{"error": {"message"}}`` or not),
    raw: pass it through ``server_text`` before showing it."""
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
