"""A client for any server that speaks OpenAI's ``POST /v1/embeddings``.

Why: many users embed through an API (OpenAI, or vLLM, TEI, Ollama, LiteLLM
serving the same route). Those give one vector per input text, which the
pooled landmark encoder (:mod:`pooled`) turns into landmark vectors. This
client does the part that costs money and fails in production: it batches
inputs, spaces requests under a rate limit, retries 429 and 5xx answers and
dropped connections with exponential backoff (honouring ``Retry-After``), and
looks every text up in a :class:`VectorCache` first, so nothing is paid for
twice. Standard library only; the API key never appears in a log, an error
or a repr.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from hybridctx.embeddings.vector_cache import VectorCache
from hybridctx.errors import ConfigError, EncoderError

__all__ = ["API_KEY_ENVS", "ClientStats", "EmbeddingsClient", "RateLimiter", "embeddings_url"]

logger = logging.getLogger(__name__)

#: Environment variables read for the API key, first set wins.
API_KEY_ENVS = ("HYBRIDCTX_EMBEDDINGS_API_KEY", "OPENAI_API_KEY")
_RETRY_STATUS = frozenset({408, 409, 425, 429})  # plus every 5xx
_MAX_BODY = 256 * 1024 * 1024  # a reply larger than this is not an embeddings reply


def embeddings_url(base_url: str) -> str:
    """The ``/embeddings`` endpoint of an OpenAI-compatible base URL.

    ``http://h:8000/v1`` -> ``http://h:8000/v1/embeddings``; a URL already
    ending in ``/embeddings`` is kept; a bare host gets ``/v1/embeddings``.

    Raises:
        ConfigError: not an http(s) URL with a host.
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"embeddings API URL {base_url!r} is not an http(s):// URL with a host, "
                          "e.g. http://127.0.0.1:8000/v1")
    path = parts.path.rstrip("/")
    if not path.endswith("/embeddings"):
        path = (path or "/v1") + "/embeddings"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class RateLimiter:
    """Spaces out work to at most ``per_minute`` units a minute (requests, or tokens).

    Each :meth:`acquire` of ``weight`` units starts no earlier than the previous
    one's start plus its share of the minute, so a steady stream never bursts
    past the limit; ``None`` means no limit.
    """

    def __init__(self, per_minute: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if per_minute is not None and not per_minute > 0:
            raise ConfigError(f"a rate limit must be positive, not {per_minute!r}")
        self.per_minute = per_minute
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self, weight: float = 1.0) -> float:
        """Wait until ``weight`` units may start; returns the seconds waited."""
        if self.per_minute is None:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + weight * 60.0 / self.per_minute
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass
class ClientStats:
    """What a client has done: requests, retries, texts sent and served from the cache, tokens billed."""

    requests: int = 0
    retries: int = 0
    texts_sent: int = 0
    cache_hits: int = 0
    tokens_billed: int = 0
    waited_s: float = 0.0


class EmbeddingsClient:
    """Vectors for texts from an OpenAI-compatible ``/v1/embeddings`` endpoint.

    Example::

        client = EmbeddingsClient("http://127.0.0.1:8000/v1", "text-embedding-3-small")
        vectors = client.embed(["first text", "second text"])   # (2, dim) float32, unit length

    Args:
        base_url: the API's base URL (``.../v1``) or its ``/embeddings`` URL.
        model: the ``model`` field of each request.
        api_key: the bearer key (default: the first of :data:`API_KEY_ENVS`
            set; none is sent when there is none, as local servers expect).
        batch_size: texts per request.
        requests_per_minute: client-side request rate limit (``None``: none).
        tokens_per_minute: client-side token rate limit, by the caller's
            token counts (``None``: none).
        timeout_s: seconds one request may take (connect and read).
        max_retries: retries of one batch after 429, 5xx, a timeout or a dropped
            connection, with exponential backoff from ``backoff_s``.
        backoff_s: first backoff; doubled each retry, up to 30 s, with jitter.
        max_retry_after_s: the longest ``Retry-After`` honoured; a server asking
            for more is reported instead of waited for.
        cache: the vector cache (default: the shared one, namespaced by URL and
            model); ``False`` for none.
        dimensions: the ``dimensions`` request field (models that shorten vectors).
        sleep, clock: what waits and what tells the time (tests replace them).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 6,
        backoff_s: float = 0.5,
        max_retry_after_s: float = 60.0,
        cache: VectorCache | bool | None = None,
        dimensions: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = embeddings_url(base_url)
        if not model or not model.strip():
            raise ConfigError("the embeddings API needs a model name (api:URL#MODEL)")
        if batch_size < 1 or max_retries < 0 or not timeout_s > 0:
            raise ConfigError(f"batch_size {batch_size} must be >= 1, max_retries {max_retries} >= 0 and "
                              f"timeout_s {timeout_s} > 0")
        self.model = model.strip()
        self._key = api_key if api_key is not None else next(
            (os.environ[v] for v in API_KEY_ENVS if os.environ.get(v)), None)
        self.batch_size = int(batch_size)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self.dimensions = dimensions
        self._requests = RateLimiter(requests_per_minute, clock=clock, sleep=sleep)
        self._tokens = RateLimiter(tokens_per_minute, clock=clock, sleep=sleep)
        self._sleep = sleep
        if cache is None or cache is True:
            cache = VectorCache(self.namespace)
        self.cache: VectorCache | None = cache if isinstance(cache, VectorCache) else None  # not `or`: len 0 is falsy
        self.stats = ClientStats()
        self._dim: int | None = None

    def __repr__(self) -> str:  # the key stays out of reprs, logs and tracebacks
        return f"EmbeddingsClient(url={self.url!r}, model={self.model!r}, key={'set' if self._key else 'none'})"

    @property
    def namespace(self) -> str:
        """What a cached vector is keyed by besides its text."""
        return f"openai-embeddings|{self.url}|{self.model}|{self.dimensions or ''}"

    # -- public ----------------------------------------------------------
    def embed(self, texts: Sequence[str], *, tokens: Sequence[int] | None = None) -> np.ndarray:
        """``(len(texts), dim) float32`` unit vectors, in order; cached texts cost nothing.

        Args:
            texts: the inputs (repeats are sent once).
            tokens: each text's token count, for ``tokens_per_minute``.

        Raises:
            EncoderError: the server failed every retry, or answered with
                something that is not an embeddings reply.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        found = self.cache.get_many(texts) if self.cache is not None else {}
        weight = dict(zip(texts, tokens)) if tokens is not None else {}
        todo = list(dict.fromkeys(t for t in texts if t not in found))
        self.stats.cache_hits += len(texts) - sum(1 for t in texts if t not in found)
        for i in range(0, len(todo), self.batch_size):
            batch = todo[i : i + self.batch_size]
            vectors = self._post(batch, sum(weight.get(t, 0) for t in batch))
            fresh = dict(zip(batch, vectors))
            if self.cache is not None:
                self.cache.put_many(fresh)  # after every batch: a failure later keeps what was paid for
            found.update(fresh)
        out = np.stack([found[t] for t in texts]).astype(np.float32, copy=False)
        if self._dim is None:
            self._dim = int(out.shape[1])
        return out

    @property
    def dim(self) -> int:
        """The vector size, from the first vector served (one probe request if none yet)."""
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    # -- one batch -------------------------------------------------------
    def _post(self, batch: list[str], tokens: int) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "float"}
        if self.dimensions:
            body["dimensions"] = int(self.dimensions)
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        for attempt in range(self.max_retries + 1):
            self.stats.waited_s += self._requests.acquire() + self._tokens.acquire(max(tokens, 0))
            self.stats.requests += 1
            try:
                request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    raw = reply.read(_MAX_BODY + 1)
                return self._vectors(raw, len(batch))
            except urllib.error.HTTPError as exc:
                failure, delay = self._http_failure(exc)
            except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError,
                    TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                failure, delay = f"no reply ({type(reason).__name__}: {reason})", None
            if attempt == self.max_retries:
                raise EncoderError(f"the embeddings API at {self.url} failed {attempt + 1} times; last: {failure}")
            wait = delay if delay is not None else min(30.0, self.backoff_s * 2 ** attempt) * random.uniform(0.5, 1.0)
            self.stats.retries += 1
            logger.info("embeddings API: %s; retry %d of %d in %.2f s", failure, attempt + 1, self.max_retries, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")

    def _http_failure(self, exc: urllib.error.HTTPError) -> tuple[str, float | None]:
        """A retryable failure's description and the server's ``Retry-After``, or raise for a final one."""
        from hybridctx.llms.wire import error_message, retry_after_seconds, server_text

        try:
            body = exc.read(64 * 1024)
        except (OSError, http.client.HTTPException):
            body = b""
        message = server_text(error_message(body), secrets=[self._key])
        status = int(exc.code)
        what = f"HTTP {status}: {message}"
        if status not in _RETRY_STATUS and status < 500:
            raise EncoderError(f"the embeddings API at {self.url} refused the request ({what})"
                               + ("; check the API key (HYBRIDCTX_EMBEDDINGS_API_KEY or OPENAI_API_KEY)"
                                  if status in (401, 403) else "")) from None
        delay = retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None)
        if delay is not None and delay > self.max_retry_after_s:
            raise EncoderError(f"the embeddings API at {self.url} asks to wait {delay:.0f} s ({what}), more than "
                               f"the {self.max_retry_after_s:.0f} s this client waits; try again later") from None
        return what, delay

    def _vectors(self, raw: bytes, n: int) -> np.ndarray:
        """The ``(n, dim)`` unit vectors of a reply, in input order."""
        from hybridctx.llms.wire import server_text

        try:
            data = json.loads(raw)
            items = sorted(data["data"], key=lambda item: int(item["index"]))
            vectors = np.asarray([item["embedding"] for item in items], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EncoderError(f"the embeddings API at {self.url} sent no embeddings reply "
                               f"({type(exc).__name__}: {server_text(raw[:300], secrets=[self._key])})") from None
        if vectors.ndim != 2 or len(vectors) != n or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
            raise EncoderError(f"the embeddings API at {self.url} sent {vectors.shape} vectors for {n} inputs")
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise EncoderError(f"the embeddings API at {self.url} changed its vector size from {self._dim} "
                               f"to {vectors.shape[1]}")
        usage = data.get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict):
            self.stats.tokens_billed += int(usage.get("prompt_tokens") or usage.get("total_tokens") or 0)
        self.stats.texts_sent += n
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
