"""A client for any server that speaks OpenAI's ``POST /v1/chat/completions``.

Why one client: vLLM, SGLang, the llama.cpp server, Ollama, Kimi (Moonshot) and
OpenAI all accept the same request, so one small standard-library client covers
them, with no SDK to install. It retries what is worth retrying (429, 5xx, a
dropped connection, a stream or body cut short) with exponential backoff and
``Retry-After``; never passes off a cut stream, an HTML page or a reply
without choices as an answer; ends every request by its deadline; turns each
server's own wording of "the prompt is too long" into ``ContextLengthError``
with the numbers in it; and never shows the API key, nor more than one
bounded line of what a server sent.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import time
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from hybridctx.errors import ConfigError, ContextLengthError, LLMError
from hybridctx.llms.deadline import Deadline, check_seconds
from hybridctx.llms.protocol import Completion, Message, TokenCallback
from hybridctx.llms.relay import Relay
from hybridctx.llms.replies import MAX_REPLY_BYTES, Parsed, ReplyReader
from hybridctx.llms.replies import Retryable as _Retry
from hybridctx.llms.wire import (
    as_int,
    context_error_numbers,
    error_message,
    is_context_error,
    retry_after_seconds,
    server_text,
)

__all__ = ["DEFAULT_WINDOW", "OpenAICompatibleLLM"]

logger = logging.getLogger(__name__)

#: Window assumed when neither the caller nor the server's ``/models`` says one.
DEFAULT_WINDOW = 8192
#: The longest ``Retry-After`` honoured; a server asking for more is reported instead.
MAX_RETRY_AFTER_S = 60.0
#: Tokens a chat template adds around each message, for the client-side estimate.
_PER_MESSAGE_TOKENS = 4
#: The whole-request deadline when none is given (``deadline_s``).
DEFAULT_DEADLINE_S = 600.0


class OpenAICompatibleLLM:
    """A chat model behind an OpenAI-compatible HTTP endpoint.

    Example::

        llm = OpenAICompatibleLLM("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
        llm.generate([{"role": "user", "content": "Hi"}]).text

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (vLLM, SGLang),
            ``http://127.0.0.1:11434/v1`` (Ollama), ``https://api.moonshot.cn/v1``
            (Kimi), ``https://api.openai.com/v1``. ``/chat/completions`` is added.
        model: the model name the server knows.
        api_key: the key to send as a bearer token; when ``None`` it is read from
            the ``api_key_env`` variable, and when that is unset none is sent
            (local servers need none).
        api_key_env: the environment variable holding the key, e.g.
            ``OPENAI_API_KEY`` or ``MOONSHOT_API_KEY``.
        timeout_s: seconds to wait for the connection and for each read (the
            read timeout: how long the server may stay silent).
        deadline_s: the most seconds one ``generate`` may take in all:
            connecting, every retry and wait, and every read (the total
            deadline: a server that trickles keep-alive comments or one byte
            at a time ends here). ``None`` for no limit.
        max_retries: further attempts after a 429, a 5xx, a dropped
            connection or a reply cut short.
        backoff_s: the first wait between attempts; it doubles each time. A
            ``Retry-After`` header from the server takes precedence.
        window: the model's window in tokens. When ``None`` it is read from the
            server's ``GET /models`` (vLLM, SGLang, llama.cpp report it) on first
            use of ``window``, else ``DEFAULT_WINDOW`` is assumed (logged).
        counter: counts tokens for the estimates used when the server reports
            no usage; ``cl100k_base`` by default.
        headers: extra HTTP headers to send.
        extra_body: extra fields merged into each request (``top_p``, ``stop``,
            server-specific options).
        stream_usage: ask for usage in the last streamed chunk
            (``stream_options.include_usage``); turn off for servers that
            reject the field.

    Raises:
        ConfigError: ``base_url`` is not an http(s) URL, or a number is out of range.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        deadline_s: float | None = DEFAULT_DEADLINE_S,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        window: int | None = None,
        counter: Any = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        stream_usage: bool = True,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"LLM base URL '{base_url}' is not an http(s) URL such as http://127.0.0.1:8000/v1")
        if not timeout_s > 0 or max_retries < 0 or not backoff_s >= 0:
            raise ConfigError(
                f"timeout_s must be > 0 and max_retries, backoff_s >= 0; got {timeout_s}, {max_retries}, {backoff_s}"
            )
        self.deadline_s = check_seconds("deadline_s", deadline_s)
        if window is not None and window <= 0:
            raise ConfigError(f"window must be a positive number of tokens; got {window}")
        root = base_url.rstrip("/")
        if root.endswith("/chat/completions"):
            root = root[: -len("/chat/completions")]
        self.base_url = root
        # What messages and logs show: the URL without any user:password@ in it.
        self._shown_base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")
        self._shown_base = self._shown_base.removesuffix("/chat/completions")
        self.name = model
        self.model = model
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self._window = window
        self._counter = counter
        self._extra_body = dict(extra_body or {})
        self._stream_usage = stream_usage
        key = api_key if api_key is not None else (os.environ.get(api_key_env) if api_key_env else None)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        self._headers.update(headers or {})
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        # Never shown: the key, a password in the URL, and credentials in extra headers (api-key, X-Auth-Token).
        secrets = [key, parts.password] + [v.partition(" ")[2] or v for k, v in self._headers.items()
                                           if any(w in k.lower() for w in ("auth", "key", "token"))]
        self._reader = ReplyReader(self._url, tuple(x for x in secrets if x), self.timeout_s)

    def __repr__(self) -> str:  # the key stays out of reprs, logs and tracebacks
        return f"OpenAICompatibleLLM(base_url={self._shown_base!r}, model={self.model!r})"

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def _url(self) -> str:
        return f"{self._shown_base}/chat/completions"

    @property
    def window(self) -> int:
        """The model's window in tokens (asked of the server once when not given)."""
        if self._window is None:
            self._window = self._discover_window()
        return self._window

    def generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stream: bool = False,
        on_token: TokenCallback | None = None,
        deadline_s: float | None = None,
    ) -> Completion:
        """Ask the server to answer ``messages``.

        Args:
            messages: the chat, oldest first.
            max_tokens: the most tokens to generate.
            temperature: 0 asks for greedy decoding.
            stream: receive the answer as server-sent events, calling
                ``on_token`` with each piece as it arrives.
            on_token: called per piece when streaming; without ``stream`` it
                is called once with the whole answer. When a stream breaks
                off and is retried, pieces already handed on are not repeated.
            deadline_s: a deadline for this call, when shorter than the
                client's ``deadline_s`` (``hybridctx ask --timeout``).

        Returns:
            The answer with the server's token usage (the client's estimate
            when the server reports none) and the wall time, retries included.
            A stream counts as answered only when it ends with ``[DONE]`` or
            a ``finish_reason``.

        Raises:
            ContextLengthError: the server says the prompt exceeds the window.
            LLMError: a non-retryable HTTP error; retries exhausted (a stream
                that kept breaking off included); the deadline or a read
                timeout passed; or a reply that is not a chat completion (an
                HTML page, no choices, bytes that are not UTF-8). Its message
                is one line, with no credential in it.
        """
        if max_tokens <= 0:
            raise ConfigError(f"max_tokens must be positive; got {max_tokens}")
        wanted = [s for s in (self.deadline_s, check_seconds("deadline_s", deadline_s)) if s is not None]
        deadline = Deadline(min(wanted) if wanted else None)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": int(max_tokens),
            "temperature": float(temperature),
            "stream": bool(stream),
        }
        if stream and self._stream_usage:
            body["stream_options"] = {"include_usage": True}
        body.update(self._extra_body)
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")

        relay = Relay(on_token)
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                result = self._attempt(payload, stream, messages, max_tokens, relay, deadline)
                break
            except _Retry as retry:
                tried = f"{attempt + 1} attempt{'s' if attempt else ''}"
                if attempt >= self.max_retries:
                    raise LLMError(
                        f"{self._url} failed after {tried}: {retry.reason}; "
                        "check that the server is up and not overloaded, or raise max_retries"
                    ) from None
                wait = self.backoff_s * (2**attempt) if retry.wait_s is None else retry.wait_s
                if wait >= deadline.remaining():
                    raise self._deadline_error(deadline, f"after {tried}: {retry.reason}") from None
                attempt += 1
                logger.info(
                    "LLM request to %s: %s; retry %d of %d in %.2f s",
                    self._url, retry.reason, attempt, self.max_retries, wait,
                )
                time.sleep(wait)
        if not stream:
            relay.feed(result["text"])
        seconds = time.perf_counter() - started
        completion = Completion(
            text=result["text"],
            prompt_tokens=result["prompt_tokens"],
            completion_tokens=result["completion_tokens"],
            seconds=seconds,
            model=result["model"] or self.model,
            finish_reason=result["finish_reason"],
        )
        logger.debug(
            "LLM %s answered: %d prompt + %d completion tokens in %.2f s (%s)",
            completion.model, completion.prompt_tokens, completion.completion_tokens,
            seconds, completion.finish_reason,
        )
        return completion

    # -- one attempt ---------------------------------------------------------------

    def _attempt(
        self,
        payload: bytes,
        stream: bool,
        messages: list[Message],
        max_tokens: int,
        relay: Relay,
        deadline: Deadline,
    ) -> dict[str, Any]:
        try:
            with self._open("POST", self.chat_url, payload, deadline) as response:
                if stream:
                    return self._read_stream(response, messages, max_tokens, relay)
                return self._read_reply(response, messages, max_tokens)
        except (_Retry, LLMError, OSError, http.client.HTTPException, ValueError):
            if deadline.fired:  # the watchdog cut the read: whatever broke, time ran out
                raise self._deadline_error(deadline, "the reply was still arriving") from None
            raise

    def _read_reply(self, response: http.client.HTTPResponse, messages: list[Message],
                    max_tokens: int) -> dict[str, Any]:
        body = self._read(response)
        self._check_status(response.status, response.headers, body, messages, max_tokens)
        data = self._reader.json_object(body, response.getheader("Content-Type"))
        return self._result(self._reader.from_json(data), messages)

    def _read_stream(
        self,
        response: http.client.HTTPResponse,
        messages: list[Message],
        max_tokens: int,
        relay: Relay,
    ) -> dict[str, Any]:
        if not 200 <= response.status < 300:
            self._check_status(response.status, response.headers, self._read(response), messages, max_tokens)
        kind = response.getheader("Content-Type") or ""
        relay.begin()
        if "json" in kind.lower():  # a server that ignores "stream" answers with one JSON body
            parsed = self._reader.from_json(self._reader.json_object(self._read(response), kind))
            self._reader.feed(relay, parsed.text)
        elif kind and "event-stream" not in kind.lower():
            raise self._reader.not_a_reply(self._read(response), kind, "an event stream")
        else:
            parsed = self._reader.stream(response, relay,
                                         lambda chunk: self._raise_error(200, chunk, messages, max_tokens))
        return self._result(parsed, messages)

    # -- HTTP ----------------------------------------------------------------------

    def _open(self, method: str, url: str, payload: bytes | None, deadline: Deadline,
              timeout_s: float | None = None) -> _Opened:
        per_read = self.timeout_s if timeout_s is None else timeout_s
        timeout = deadline.timeout(per_read)
        shown = url.replace(self.base_url, self._shown_base, 1)
        parts = urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname or "", parts.port, timeout=timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.connect()
        except (socket.timeout, TimeoutError):
            conn.close()
            raise _Retry(f"connecting timed out after {timeout:g} s") from None
        except OSError as exc:
            conn.close()
            raise _Retry(f"cannot connect ({exc})") from exc
        if conn.sock is not None:
            conn.sock.settimeout(per_read)  # the deadline's watchdog ends a read that outlives it
        deadline.watch(conn.sock)
        try:
            conn.request(method, path, body=payload, headers=self._headers)
            response = conn.getresponse()
        except (socket.timeout, TimeoutError):
            deadline.unwatch()
            conn.close()
            raise LLMError(
                f"{method} {shown} timed out after {per_read:g} s waiting for the server; "
                "raise timeout_s or check the server"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            deadline.unwatch()
            conn.close()
            raise _Retry(f"the connection failed ({exc.__class__.__name__}: {server_text(str(exc))})") from exc
        return _Opened(conn, response, deadline)

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        try:
            body = response.read(MAX_REPLY_BYTES + 1)
        except (socket.timeout, TimeoutError):
            raise LLMError(
                f"reading the reply from {self._url} timed out after {self.timeout_s:g} s; "
                "raise timeout_s or check the server"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retry(f"the reply broke off ({exc.__class__.__name__})") from exc
        if len(body) > MAX_REPLY_BYTES:
            raise LLMError(f"{self._url} sent a reply larger than {MAX_REPLY_BYTES >> 20} MiB")
        return body

    def _check_status(
        self,
        status: int,
        headers: http.client.HTTPMessage,
        body: bytes,
        messages: list[Message],
        max_tokens: int,
    ) -> None:
        if 200 <= status < 300:
            return
        if status == 429 or status >= 500:
            wait = retry_after_seconds(headers.get("Retry-After"))
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                raise LLMError(
                    f"{self._url} answered HTTP {status} and asks to retry after {wait:g} s, "
                    f"longer than hybridctx waits ({MAX_RETRY_AFTER_S:g} s); try again later"
                )
            raise _Retry(f"HTTP {status}: {self._reader.shown(error_message(body), limit=200)}", wait)
        try:
            data = json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            data = {"error": {"message": body.decode("utf-8", "replace")}}
        self._raise_error(status, data if isinstance(data, dict) else {"error": data}, messages, max_tokens)

    def _raise_error(self, status: int, data: Mapping[str, Any], messages: list[Message], max_tokens: int) -> None:
        error = data.get("error", data)
        fields = error if isinstance(error, Mapping) else {}
        message = str(fields.get("message", error)) if fields else str(error)
        code = str(fields.get("code") or fields.get("type") or "")
        if status in (200, 400, 413, 422) and is_context_error(message, code):
            tokens, window = context_error_numbers(fields, message)
            if tokens is None:
                tokens = self._estimate_prompt(messages) + max_tokens
            if window is None:
                window = self.window
            raise ContextLengthError(tokens, window, self.model)
        hint = {
            401: "check the API key (api_key= or the api_key_env variable)",
            403: "check the API key's permissions",
            404: f"check the base URL ({self._shown_base}) and the model name ({self.model!r})",
        }.get(status, "check the request")
        where = f"HTTP {status}" if status != 200 else "an error in the stream"
        raise LLMError(f"{self._url} answered {where}: {self._reader.shown(message)}; {hint}")

    def _deadline_error(self, deadline: Deadline, what: str) -> LLMError:
        return LLMError(
            f"{self._url} gave no complete answer within the {deadline.seconds:.3g} s deadline ({what}); "
            "raise deadline_s (hybridctx ask --timeout) or check the server"
        )

    # -- results -------------------------------------------------------------------

    def _result(self, parsed: Parsed, messages: list[Message]) -> dict[str, Any]:
        usage = parsed.usage or {}
        prompt = as_int(usage.get("prompt_tokens"))
        completion = as_int(usage.get("completion_tokens"))
        return {
            "text": parsed.text,
            "prompt_tokens": prompt if prompt is not None else self._estimate_prompt(messages),
            "completion_tokens": completion if completion is not None else self._count(parsed.text),
            "model": parsed.model,
            "finish_reason": parsed.finish,
        }

    def _estimate_prompt(self, messages: list[Message]) -> int:
        return sum(self._count(str(m.get("content") or "")) + _PER_MESSAGE_TOKENS for m in messages)

    def _count(self, text: str) -> int:
        if self._counter is None:
            from hybridctx.packing.tokens import get_counter

            self._counter = get_counter("cl100k_base")
        return int(self._counter.count(text))

    def _discover_window(self) -> int:
        url = f"{self.base_url}/models"
        try:
            deadline = Deadline(min(self.timeout_s, 10.0, self.deadline_s or 10.0))
            with self._open("GET", url, None, deadline) as response:
                body = self._read(response)
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            entries = json.loads(body.decode("utf-8")).get("data") or []
        except (_Retry, LLMError, OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
            logger.info("window of %s unknown (%s: %s); assuming %d tokens — pass window= to set it",
                        self.model, url.replace(self.base_url, self._shown_base, 1),
                        self._reader.shown(str(exc), limit=200), DEFAULT_WINDOW)
            return DEFAULT_WINDOW
        for entry in entries:
            if not isinstance(entry, dict) or (entry.get("id") != self.model and len(entries) > 1):
                continue
            meta = entry.get("meta")
            meta = meta if isinstance(meta, dict) else {}
            # vLLM/SGLang: max_model_len; LM Studio, OpenRouter: context_length; llama.cpp: meta.n_ctx*
            for value in (entry.get("max_model_len"), entry.get("context_length"), entry.get("context_window"),
                          meta.get("n_ctx"), meta.get("n_ctx_train")):
                found = as_int(value)
                if found and found > 0:
                    logger.info("window of %s is %d tokens, as %s/models reports", self.model, found,
                                self._shown_base)
                    return found
        logger.info("window of %s unknown (%s/models does not report it); assuming %d tokens — "
                    "pass window= to set it", self.model, self._shown_base, DEFAULT_WINDOW)
        return DEFAULT_WINDOW


class _Opened:
    """A response that closes its connection, and stops its deadline's watchdog, when the
    ``with`` block ends."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse,
                 deadline: Deadline) -> None:
        self.conn = conn
        self.response = response
        self.deadline = deadline

    def __enter__(self) -> http.client.HTTPResponse:
        return self.response

    def __exit__(self, *exc: object) -> None:
        self.deadline.unwatch()
        self.response.close()
        self.conn.close()
