"""Reading one ``POST /v1/chat/completions`` body into a checked ``ChatTurn``.

Why its own module: a client's mistake must come back as OpenAI's own error
shape (status 400, ``invalid_request_error``, the field at fault in ``param``)
before an index is searched or the upstream is paid, and the gateway must know
exactly which parts of a chat it routes (the last user turn), which it passes
on (the earlier turns, the client's system prompt, sampling settings) and
which it refuses rather than silently drops (``n`` > 1, tools).

The request may carry the extension ``"hybridctx": {...}`` (see docs/serve.md):
``budget``, ``doc_ids``, ``timeout_s`` and the router's limits (``max_usd``,
``max_latency_s``, ``max_kv_gib``, ``max_budget``, ``min_budget``,
``default_budget``, ``retrieval_share``, ``max_share_budget``,
``prefer_full_under_tokens``, ``cheap_full_ratio``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from hybridctx.errors import InputError
from hybridctx.config.settings import did_you_mean

__all__ = ["LIMIT_KEYS", "PASSED_ON", "ChatTurn", "RequestError", "TurnOptions", "parse_chat_request"]

#: Sampling fields passed on to the upstream unchanged.
PASSED_ON = ("top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "user")
#: Route limits a request may set; answer_tokens and prompt_tokens are the gateway's to compute.
LIMIT_KEYS = ("max_usd", "max_latency_s", "max_kv_gib", "min_budget", "max_budget", "default_budget",
               "retrieval_share", "max_share_budget", "prefer_full_under_tokens", "cheap_full_ratio")
_OPTION_KEYS = ("budget", "doc_ids", "timeout_s")
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class RequestError(InputError):
    """A request the gateway refuses, with the HTTP status and OpenAI error fields to answer it with.

    Attributes:
        status: HTTP status (400 unless said).
        type: OpenAI's error ``type`` (``invalid_request_error``, ...).
        code: OpenAI's error ``code`` or ``None``.
        param: the request field at fault, or ``None``.
    """

    def __init__(self, message: str, *, status: int = 400, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.code = code
        self.param = param


@dataclass(frozen=True)
class TurnOptions:
    """What the ``hybridctx`` request extension asked for.

    Attributes:
        budget: retrieval budget to weigh (``None``: the router's).
        doc_ids: restrict to these documents (``None``: all).
        timeout_s: a shorter deadline for the LLM calls than the gateway's.
        limits: route-limit fields, as given (checked by ``RouteLimits``).
    """

    budget: int | None = None
    doc_ids: tuple[str, ...] | None = None
    timeout_s: float | None = None
    limits: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatTurn:
    """One chat request, checked.

    Attributes:
        model: the requested model, i.e. the name of an index.
        question: the text of the last user message (what is routed).
        history: the earlier user and assistant messages, passed on as they came.
        system: the client's system and developer messages, joined.
        stream: answer as server-sent events.
        include_usage: send a usage chunk at the end of the stream.
        max_tokens: the longest answer asked for (``None``: the gateway's default).
        temperature: sampling temperature (``None``: 0, as ``ask`` uses).
        passed_on: sampling fields sent to the upstream unchanged.
        options: the ``hybridctx`` extension.
    """

    model: str
    question: str
    history: tuple[Mapping[str, Any], ...]
    system: str
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    passed_on: Mapping[str, Any] = field(default_factory=dict)
    options: TurnOptions = field(default_factory=TurnOptions)


def parse_chat_request(body: Any) -> ChatTurn:
    """Check a decoded request body.

    Raises:
        RequestError: the first problem found, naming its field.
    """
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("'model' must name one of the gateway's indexes (GET /v1/models lists them)",
                           param="model")
    if body.get("n") not in (None, 1):
        raise RequestError("'n' must be 1: the gateway answers each question once", param="n")
    for key in ("tools", "functions"):
        if body.get(key):
            raise RequestError(f"'{key}' is not supported: the gateway answers from its documents and passes "
                               "no tools to the upstream; call the upstream directly for tool use", param=key)
    stream = _boolean(body, "stream")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise RequestError("'stream_options' must be an object", param="stream_options")
    include_usage = bool(stream and stream_options and stream_options.get("include_usage") is True)
    question, history, system = _messages(body.get("messages"))
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise RequestError("'max_tokens' must be a whole number of at least 1", param="max_tokens")
    temperature = body.get("temperature")
    if temperature is not None and not (_number(temperature) and 0 <= temperature <= 2):
        raise RequestError("'temperature' must be a number from 0 to 2", param="temperature")
    passed_on = {key: body[key] for key in PASSED_ON if body.get(key) is not None}
    return ChatTurn(model=model, question=question, history=history, system=system, stream=stream,
                    include_usage=include_usage, max_tokens=max_tokens, temperature=temperature,
                    passed_on=passed_on, options=_options(body.get("hybridctx")))


def _messages(messages: Any) -> tuple[str, tuple[Mapping[str, Any], ...], str]:
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of chat messages", param="messages")
    system: list[str] = []
    history: list[Mapping[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise RequestError(f"{where} must be an object whose 'role' is one of {', '.join(_ROLES)}", param=where)
        if message["role"] in ("system", "developer"):
            system.append(_text(message.get("content"), where))
        elif i < len(messages) - 1 and message["role"] in ("user", "assistant"):
            text = _text(message.get("content"), where, allow_empty=message["role"] == "assistant")
            if text:  # an assistant turn that only called tools has nothing to pass on
                history.append({"role": message["role"], "content": text})
    last = messages[-1]
    if last["role"] != "user":
        raise RequestError(f"the last message must be the user's question, not a {last['role']!r} message",
                           param=f"messages[{len(messages) - 1}]")
    question = _text(last.get("content"), f"messages[{len(messages) - 1}]")
    if not question.strip():
        raise RequestError("the last user message is empty; ask something", param=f"messages[{len(messages) - 1}]")
    return question, tuple(history), "\n\n".join(s for s in system if s.strip())


def _text(content: Any, where: str, *, allow_empty: bool = False) -> str:
    """A message's text: a string, or the ``text`` parts of a list of content parts."""
    if content is None and allow_empty:
        return ""
    if isinstance(content, str):
        return _utf8(content, where)
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(f"{where}: only text content is supported, not {kind!r} parts", param=where)
            parts.append(part["text"])
        return _utf8("".join(parts), where)
    raise RequestError(f"{where}: 'content' must be a string or a list of text parts", param=where)


def _utf8(text: str, where: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(f"{where}: the text holds a lone surrogate, which is not Unicode text", param=where) from None
    return text


def _options(ext: Any) -> TurnOptions:
    if ext is None:
        return TurnOptions()
    if not isinstance(ext, dict):
        raise RequestError("'hybridctx' must be an object of routing options (see docs/serve.md)", param="hybridctx")
    known = _OPTION_KEYS + LIMIT_KEYS
    for key in ext:
        if key not in known:
            raise RequestError(f"unknown hybridctx option '{key}'{did_you_mean(key, known)}", param=f"hybridctx.{key}")
    budget = ext.get("budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise RequestError("hybridctx.budget must be a whole number of tokens of at least 1", param="hybridctx.budget")
    doc_ids = ext.get("doc_ids")
    if doc_ids is not None:
        if not isinstance(doc_ids, list) or not doc_ids or not all(isinstance(d, str) and d for d in doc_ids):
            raise RequestError("hybridctx.doc_ids must be a non-empty list of document ids", param="hybridctx.doc_ids")
        doc_ids = tuple(_utf8(d, "hybridctx.doc_ids") for d in doc_ids)
    timeout_s = ext.get("timeout_s")
    if timeout_s is not None and not (_number(timeout_s) and timeout_s > 0):
        raise RequestError("hybridctx.timeout_s must be a positive number of seconds", param="hybridctx.timeout_s")
    # retrieval_share: null is meaningful (a fixed default_budget); other nulls mean "the gateway's".
    limits = {key: ext[key] for key in LIMIT_KEYS if ext.get(key) is not None or key == "retrieval_share" and key in ext}
    for key, value in limits.items():
        if value is not None and not _number(value):
            raise RequestError(f"hybridctx.{key} must be a number", param=f"hybridctx.{key}")
    return TurnOptions(budget=budget, doc_ids=doc_ids, timeout_s=timeout_s, limits=limits)


def _boolean(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f"'{key}' must be true or false", param=key)
    return value


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)

