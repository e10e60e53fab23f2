"""Reading one chat-completions reply, a JSON body or an event stream, into one answer.

Why apart from the client: what counts as an answer is the heart of never passing
off a broken reply as one, and it is the same whatever connection, retry or
deadline brought the bytes. A JSON body is an answer when it is a UTF-8 JSON
object with a choice in it; a stream, when it ends with ``[DONE]`` or a
``finish_reason`` and had a choice in it. A body or stream cut short is
``Retryable``; an HTML page, no choices, or bytes that are not UTF-8 are an
``LLMError`` that quotes one bounded, redacted line of what the server sent.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from hybridctx.errors import LLMError
from hybridctx.llms.relay import Diverged, Relay
from hybridctx.llms.wire import EventStream, server_text

__all__ = ["MAX_REPLY_BYTES", "Parsed", "ReplyReader", "Retryable"]

#: The largest reply body (or streamed text) accepted; more is a misbehaving server.
MAX_REPLY_BYTES = 32 << 20


class Retryable(Exception):
    """This attempt failed in a way worth another try (a 429 or 5xx, a reply cut short)."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


@dataclass(frozen=True)
class Parsed:
    """What one reply said: its text, usage, model and finish reason (``None`` where absent)."""

    text: str
    usage: Mapping[str, Any] | None
    model: str | None
    finish: str | None


class ReplyReader:
    """Reads the replies of one endpoint.

    Args:
        url: the endpoint as messages show it (no credentials in it).
        secrets: values never to show (the API key).
        timeout_s: the read timeout, for its message.
    """

    def __init__(self, url: str, secrets: tuple[str, ...], timeout_s: float) -> None:
        self.url = url
        self.secrets = secrets
        self.timeout_s = timeout_s

    def shown(self, text: bytes | str, *, limit: int = 300, html: bool = False) -> str:
        """Server text as one bounded line, with the key and anything like a credential taken out."""
        return server_text(text, secrets=self.secrets, limit=limit, html=html)

    def json_object(self, body: bytes, kind: str | None) -> dict[str, Any]:
        """``body`` as a JSON object; ``kind`` is its Content-Type (or "an event").

        Raises:
            Retryable: the JSON stops short, as a body cut in transit does.
            LLMError: not UTF-8, not JSON, or not an object.
        """
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise self.not_a_reply(body, kind, "UTF-8 JSON") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
            if text.lstrip()[:1] in ("{", "[") and cut:
                raise Retryable(f"the reply broke off after {len(body)} bytes, inside its JSON") from None
            raise self.not_a_reply(body, kind, "JSON") from None
        except RecursionError:
            raise self.not_a_reply(body, kind, "JSON of a sane depth") from None
        if not isinstance(data, dict):
            raise self.not_a_reply(body, kind, "a JSON object")
        return data

    def not_a_reply(self, body: bytes, kind: str | None, wanted: str) -> LLMError:
        """The error for a reply that is not what the protocol says (an HTML page, plain text)."""
        what = kind if kind == "an event" else f"a reply of {kind or 'no Content-Type'}"
        html = "html" in what.lower() or body.lstrip()[:1] == b"<"
        return LLMError(
            f"{self.url} sent {what} where {wanted} was expected: "
            f"{self.shown(body, html=html)}; check the base URL (usually ending in /v1) and the server"
        )

    def from_json(self, data: Mapping[str, Any]) -> Parsed:
        """The answer in a chat completion body.

        Raises:
            LLMError: it has no choice in it.
        """
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, Mapping):
            raise LLMError(f"{self.url} sent a reply with no choices in it: "
                           f"{self.shown(json.dumps(data, ensure_ascii=False), limit=200)}; the server is misbehaving")
        message = choice.get("message")
        text = message.get("content") if isinstance(message, Mapping) else None
        text = text if isinstance(text, str) and text else choice.get("text")
        return Parsed(text if isinstance(text, str) else "", _mapping(data.get("usage")), _string(data.get("model")),
                      _string(choice.get("finish_reason")))

    def stream(self, response: http.client.HTTPResponse, relay: Relay,
               on_error: Callable[[Mapping[str, Any]], None]) -> Parsed:
        """The answer in an event stream, each piece handed to ``relay`` as it arrives.

        Args:
            response: the open reply, positioned at its body.
            relay: takes each piece of text.
            on_error: called with a chunk that carries an ``error`` (it raises).

        Raises:
            Retryable: the stream broke off, or ended without ``[DONE]`` or a ``finish_reason``.
            LLMError: a read timeout, bytes that are not UTF-8, an event that is not
                JSON, no choices, or a retry that streams a different answer.
        """
        events = EventStream(response)
        pieces: list[str] = []
        size = 0
        usage: Mapping[str, Any] | None = None
        finish: str | None = None
        model: str | None = None
        choices_seen = False
        try:
            for event in events:
                chunk = self.json_object(event.encode("utf-8"), "an event")
                if "error" in chunk:
                    on_error(chunk)
                model = _string(chunk.get("model")) or model
                choices = chunk.get("choices")
                choice = choices[0] if isinstance(choices, list) and choices else None
                if isinstance(choice, Mapping):
                    choices_seen = True
                    delta = choice.get("delta")
                    piece = delta.get("content") if isinstance(delta, Mapping) else None
                    if isinstance(piece, str) and piece:
                        size += len(piece)
                        if size > MAX_REPLY_BYTES:
                            raise LLMError(f"{self.url} streamed more than {MAX_REPLY_BYTES >> 20} MiB of text")
                        pieces.append(piece)
                        self.feed(relay, piece)
                    finish = _string(choice.get("finish_reason")) or finish
                    usage = _mapping(choice.get("usage")) or usage  # Moonshot puts it here
                usage = _mapping(chunk.get("usage")) or usage
        except UnicodeDecodeError as exc:
            raise LLMError(
                f"{self.url} streamed bytes that are not UTF-8 (0x{exc.object[exc.start]:02x} at byte "
                f"{exc.start} of a line, after {size} characters of answer); the server is misbehaving"
            ) from None
        except (socket.timeout, TimeoutError):
            raise LLMError(
                f"the stream from {self.url} sent nothing for {self.timeout_s:g} s (timeout_s) after "
                f"{size} characters of answer; check the server"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            if finish is None:  # a stream that said how it ended lost only its usage chunk
                raise Retryable(f"the stream broke off after {size} characters ({exc.__class__.__name__})") from exc
        except ValueError as exc:  # a line longer than any chunk
            raise LLMError(f"{self.url} sent a malformed event stream: {exc}") from None
        if finish is None and (events.tail is not None or not events.done):
            where = "inside an event" if events.tail is not None else "without [DONE] or a finish_reason"
            raise Retryable(f"the stream ended {where} after {size} characters")
        if not choices_seen:
            raise LLMError(f"{self.url} sent a stream with no choices in it; the server is misbehaving")
        return Parsed("".join(pieces), usage, model, finish)

    def feed(self, relay: Relay, piece: str) -> None:
        """Hand ``piece`` on; a retried stream that answers differently is an error."""
        try:
            relay.feed(piece)
        except Diverged as exc:
            raise LLMError(
                f"the stream from {self.url} broke off after {relay.sent} characters and {exc}; "
                "the text streamed so far is incomplete"
            ) from None


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
