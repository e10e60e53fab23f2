"""A client for any server that speaks OpenAI's ``POST /v1/chat/completions``.

Why one client: vLLM, SGLang, the llama.cpp server, Ollama, Kimi (Moonshot) and
OpenAI all accept the same request, so one small standard-library client covers
them, with no SDK to install. It retries what is worth retrying (429, 5xx, a
dropped connection) with exponential backoff and ``Retry-After``; turns each
server's own wording of "the prompt is too long" into ``ContextLengthError``
with the numbers in it; and never logs the API key.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import time
from typing import Any, Mapping
from urllib.parse import urlsplit

from hybridctx.errors import ConfigError, ContextLengthError, LLMError
from hybridctx.llms.protocol import Completion, Message, TokenCallback
from hybridctx.llms.wire import (
    as_int,
    context_error_numbers,
    error_message,
    is_context_error,
    retry_after_seconds,
    sse_events,
)

__all__ = ["DEFAULT_WINDOW", "OpenAICompatibleLLM"]

logger = logging.getLogger(__name__)

#: Window assumed when neither the caller nor the server's ``/models`` says one.
DEFAULT_WINDOW = 8192
#: The longest ``Retry-After`` honoured; a server asking for more is reported instead.
MAX_RETRY_AFTER_S = 60.0
#: Tokens a chat template adds around each message, for the client-side estimate.
_PER_MESSAGE_TOKENS = 4

class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


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
        timeout_s: seconds to wait for the connection and for each read.
        max_retries: further attempts after a 429, a 5xx or a dropped connection.
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
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise ConfigError(
                f"timeout_s must be > 0 and max_retries, backoff_s >= 0; got {timeout_s}, {max_retries}, {backoff_s}"
            )
        if window is not None and window <= 0:
            raise ConfigError(f"window must be a positive number of tokens; got {window}")
        root = base_url.rstrip("/")
        if root.endswith("/chat/completions"):
            root = root[: -len("/chat/completions")]
        self.base_url = root
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

    def __repr__(self) -> str:  # the key stays out of reprs, logs and tracebacks
        return f"OpenAICompatibleLLM(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

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
    ) -> Completion:
        """Ask the server to answer ``messages``.

        Args:
            messages: the chat, oldest first.
            max_tokens: the most tokens to generate.
            temperature: 0 asks for greedy decoding.
            stream: receive the answer as server-sent events, calling
                ``on_token`` with each piece as it arrives.
            on_token: called per piece when streaming; without ``stream`` it
                is called once with the whole answer.

        Returns:
            The answer with the server's token usage (the client's estimate
            when the server reports none) and the wall time, retries included.

        Raises:
            ContextLengthError: the server says the prompt exceeds the window.
            LLMError: a non-retryable HTTP error, retries exhausted, a timeout,
                or a reply that is not a chat completion.
        """
        if max_tokens <= 0:
            raise ConfigError(f"max_tokens must be positive; got {max_tokens}")
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

        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                if stream:
                    result = self._attempt_stream(payload, messages, max_tokens, on_token)
                else:
                    result = self._attempt_json(payload, messages, max_tokens)
                    if on_token is not None and result["text"]:
                        on_token(result["text"])
                break
            except _Retry as retry:
                if attempt >= self.max_retries:
                    raise LLMError(
                        f"{self.chat_url} failed after {attempt + 1} attempts: {retry.reason}; "
                        "check that the server is up and not overloaded, or raise max_retries"
                    ) from None
                wait = self.backoff_s * (2**attempt) if retry.wait_s is None else retry.wait_s
                attempt += 1
                logger.info(
                    "LLM request to %s: %s; retry %d of %d in %.2f s",
                    self.chat_url, retry.reason, attempt, self.max_retries, wait,
                )
                time.sleep(wait)
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

    def _attempt_json(self, payload: bytes, messages: list[Message], max_tokens: int) -> dict[str, Any]:
        with self._open("POST", self.chat_url, payload) as response:
            body = self._read(response)
        self._check_status(response.status, response.headers, body, messages, max_tokens)
        data = self._json(body)
        return self._from_json(data, messages)

    def _attempt_stream(
        self,
        payload: bytes,
        messages: list[Message],
        max_tokens: int,
        on_token: TokenCallback | None,
    ) -> dict[str, Any]:
        pieces: list[str] = []
        with self._open("POST", self.chat_url, payload) as response:
            if response.status != 200:
                body = self._read(response)
                self._check_status(response.status, response.headers, body, messages, max_tokens)
            if "application/json" in (response.getheader("Content-Type") or ""):
                # A server that ignores "stream" answers with one JSON body.
                result = self._from_json(self._json(self._read(response)), messages)
                if on_token is not None and result["text"]:
                    on_token(result["text"])
                return result
            usage: Mapping[str, Any] | None = None
            finish: str | None = None
            model: str | None = None
            try:
                for event in sse_events(response):
                    chunk = self._json(event.encode("utf-8"))
                    if "error" in chunk:
                        self._raise_error(200, chunk, messages, max_tokens)
                    model = chunk.get("model") or model
                    choices = chunk.get("choices") or []
                    if choices:
                        choice = choices[0]
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            pieces.append(piece)
                            if on_token is not None:
                                on_token(piece)
                        finish = choice.get("finish_reason") or finish
                        usage = choice.get("usage") or usage  # Moonshot puts it here
                    usage = chunk.get("usage") or usage
            except (socket.timeout, TimeoutError):
                raise LLMError(
                    f"the stream from {self.chat_url} timed out after {self.timeout_s:g} s without data; "
                    "raise timeout_s"
                ) from None
            except (ConnectionError, http.client.HTTPException) as exc:
                if pieces:  # tokens already went to on_token: a retry would repeat them
                    raise LLMError(f"the stream from {self.chat_url} broke off: {exc}") from exc
                raise _Retry(f"the stream broke off ({exc})") from exc
        text = "".join(pieces)
        return self._result(text, usage, messages, model, finish)

    # -- HTTP ----------------------------------------------------------------------

    def _open(self, method: str, url: str, payload: bytes | None, timeout_s: float | None = None) -> _Opened:
        timeout = self.timeout_s if timeout_s is None else timeout_s
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
        try:
            conn.request(method, path, body=payload, headers=self._headers)
            response = conn.getresponse()
        except (socket.timeout, TimeoutError):
            conn.close()
            raise LLMError(
                f"{method} {url} timed out after {timeout:g} s waiting for the server; "
                "raise timeout_s or check the server"
            ) from None
        except (ConnectionError, http.client.HTTPException) as exc:
            conn.close()
            raise _Retry(f"the connection failed ({exc.__class__.__name__}: {exc})") from exc
        return _Opened(conn, response)

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        try:
            return response.read()
        except (socket.timeout, TimeoutError):
            raise LLMError(
                f"reading the reply from {self.chat_url} timed out after {self.timeout_s:g} s; raise timeout_s"
            ) from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Retry(f"the reply broke off ({exc.__class__.__name__}: {exc})") from exc

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
                    f"{self.chat_url} answered HTTP {status} and asks to retry after {wait:g} s, "
                    f"longer than hybridctx waits ({MAX_RETRY_AFTER_S:g} s); try again later"
                )
            raise _Retry(f"HTTP {status}: {error_message(body)[:200]}", wait)
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
            404: f"check the base URL ({self.base_url}) and the model name ({self.model!r})",
        }.get(status, "check the request")
        where = f"HTTP {status}" if status != 200 else "an error in the stream"
        raise LLMError(f"{self.chat_url} answered {where}: {message[:500]}; {hint}")

    def _json(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body.decode("utf-8"))
        except ValueError as exc:
            raise LLMError(f"{self.chat_url} sent a reply that is not JSON: {body[:200]!r}") from exc
        if not isinstance(data, dict):
            raise LLMError(f"{self.chat_url} sent JSON that is not an object: {body[:200]!r}")
        return data

    # -- results -------------------------------------------------------------------

    def _from_json(self, data: Mapping[str, Any], messages: list[Message]) -> dict[str, Any]:
        choices = data.get("choices")
        if not choices or not isinstance(choices, list):
            raise LLMError(f"{self.chat_url} sent a reply without choices: {json.dumps(data)[:200]}")
        choice = choices[0]
        text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
        return self._result(text, data.get("usage"), messages, data.get("model"), choice.get("finish_reason"))

    def _result(
        self,
        text: str,
        usage: Mapping[str, Any] | None,
        messages: list[Message],
        model: str | None,
        finish: str | None,
    ) -> dict[str, Any]:
        usage = usage or {}
        prompt = as_int(usage.get("prompt_tokens"))
        completion = as_int(usage.get("completion_tokens"))
        return {
            "text": text,
            "prompt_tokens": prompt if prompt is not None else self._estimate_prompt(messages),
            "completion_tokens": completion if completion is not None else self._count(text),
            "model": model,
            "finish_reason": finish,
        }

    def _estimate_prompt(self, messages: list[Message]) -> int:
        return sum(self._count(str(m.get("content") or "")) + _PER_MESSAGE_TOKENS for m in messages)

    def _count(self, text: str) -> int:
        if self._counter is None:
            from hybridctx.tokens import get_counter

            self._counter = get_counter("cl100k_base")
        return int(self._counter.count(text))

    def _discover_window(self) -> int:
        url = f"{self.base_url}/models"
        try:
            with self._open("GET", url, None, timeout_s=min(self.timeout_s, 10.0)) as response:
                body = response.read()
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            entries = json.loads(body.decode("utf-8")).get("data") or []
        except (_Retry, LLMError, OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
            logger.info("window of %s unknown (%s: %s); assuming %d tokens — pass window= to set it",
                        self.model, url, exc, DEFAULT_WINDOW)
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
                    logger.info("window of %s is %d tokens, as %s reports", self.model, found, url)
                    return found
        logger.info("window of %s unknown (%s does not report it); assuming %d tokens — pass window= to set it",
                    self.model, url, DEFAULT_WINDOW)
        return DEFAULT_WINDOW


class _Opened:
    """A response that closes its connection when the ``with`` block ends."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self.conn = conn
        self.response = response

    def __enter__(self) -> http.client.HTTPResponse:
        return self.response

    def __exit__(self, *exc: object) -> None:
        self.response.close()
        self.conn.close()
