"""``hybridctx serve``: an OpenAI-compatible HTTP gateway that routes each question.

Why FastAPI and uvicorn rather than the standard library's ``http.server``:
a gateway faces chat UIs and services it does not control, so it needs a
server that parses HTTP strictly, keeps connections alive, streams without
buffering and shuts down cleanly (uvicorn, on h11), and an event loop on
which hundreds of waiting or streaming clients cost no thread each. Only
admitted requests take a worker thread, where the pipeline (routing,
retrieval, the blocking OpenAI-compatible client with its deadline) runs as
``ask`` runs it. Both packages are already the web app's; ``[serve]``
installs them.

Endpoints: ``POST /v1/chat/completions`` (streamed or not), ``GET
/v1/models`` (one model per index), ``GET /v1/models/{name}`` and ``GET
/health``. Errors use OpenAI's shape and status codes; a fault of the upstream
becomes 502 (504 past the deadline) before anything was streamed, or an
``error`` event after, and never ends the server or holds a client past the
request's deadline.
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' parameter types at run
# time, and ``Request`` is imported inside ``create_app`` (FastAPI is optional).
import asyncio
import hmac
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

from hybridctx.errors import (
    ContextLengthError,
    HybridCtxError,
    IndexStoreError,
    LLMError,
    MissingDependencyError,
)
from hybridctx.serve.admission import Admission, Busy
from hybridctx.serve.chat_request import RequestError, parse_chat_request
from hybridctx.serve.routing_turn import ClientGone, TurnSettings, Upstream, run_turn

__all__ = ["GatewaySettings", "create_app"]

logger = logging.getLogger(__name__)

#: The largest request body read; a chat is text, and this is ~4M tokens of it.
MAX_BODY_BYTES = 16 << 20


@dataclass(frozen=True)
class GatewaySettings:
    """How the gateway serves.

    Attributes:
        upstream: where answers come from.
        turn: routing, limits, answer length and deadline for every turn.
        api_keys: keys a client must send as ``Authorization: Bearer KEY``
            (none: no key is asked for).
        max_concurrent: requests worked on at once.
        max_wait_s: how long a request waits for a place before a 429.
        span_chars: span text in the extension is cut to this many characters.
        grace_s: seconds beyond ``turn.timeout_s`` for routing and retrieval,
            after which a request is answered 504 whatever its worker does.
    """

    upstream: Upstream
    turn: TurnSettings = field(default_factory=TurnSettings)
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    max_concurrent: int = 8
    max_wait_s: float = 10.0
    span_chars: int = 4000
    grace_s: float = 30.0


def create_app(indexes: Mapping[str, Any], settings: GatewaySettings) -> Any:
    """The ASGI app serving ``indexes`` (name → opened ``HybridContext``).

    Raises:
        MissingDependencyError: FastAPI is not installed.
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, StreamingResponse
        from starlette.exceptions import HTTPException
    except ImportError:
        raise MissingDependencyError("fastapi", "serve", "hybridctx serve") from None
    from hybridctx.serve.extension import build_extension
    from hybridctx.serve.responses import chunk, completion, error_body, models_list, new_id, sse

    started = int(time.time())
    admission = Admission(settings.max_concurrent, settings.max_wait_s)
    workers = ThreadPoolExecutor(max_workers=settings.max_concurrent, thread_name_prefix="hybridctx-serve")
    shown_upstream = _shown_url(settings.upstream.base_url)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        workers.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="hybridctx gateway", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    def error(status: int, message: str, type: str, code: str | None = None, param: str | None = None,
              headers: Mapping[str, str] | None = None) -> Any:
        return JSONResponse(error_body(message, type=type, code=code, param=param), status_code=status,
                            headers=dict(headers or {}))

    def refused(exc: BaseException, elapsed_s: float, deadline_s: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Status, OpenAI error body and headers for a turn that failed."""
        no_retry = {"x-should-retry": "false"}  # the gateway already retried the upstream
        if isinstance(exc, RequestError):
            return exc.status, error_body(str(exc), type=exc.type, code=exc.code, param=exc.param), {}
        if isinstance(exc, ContextLengthError):
            return 400, error_body(_hide(str(exc), shown_upstream), type="invalid_request_error",
                                   code="context_length_exceeded"), {}
        if isinstance(exc, (LLMError, asyncio.TimeoutError)):
            late = isinstance(exc, asyncio.TimeoutError) or elapsed_s >= deadline_s
            reason = (f"no answer within the request's {deadline_s:g} s deadline" if isinstance(exc, asyncio.TimeoutError)
                      else _hide(str(exc), shown_upstream))
            logger.warning("upstream failed (%s): %s", "deadline" if late else "error", reason)
            return ((504, error_body(f"the upstream model gave no answer in time: {reason}", type="upstream_error",
                                     code="upstream_timeout"), no_retry) if late else
                    (502, error_body(f"the upstream model failed: {reason}", type="upstream_error",
                                     code="upstream_error"), no_retry))
        if isinstance(exc, HybridCtxError) and isinstance(exc, ValueError):  # InputError, ConfigError, BudgetError
            return 400, error_body(str(exc), type="invalid_request_error"), {}
        if isinstance(exc, IndexStoreError):
            logger.error("index unusable: %s", exc)
            return 500, error_body(f"the index cannot be read: {exc}", type="server_error"), {}
        logger.error("internal error in a turn", exc_info=exc)
        return 500, error_body(f"internal error in the gateway ({type(exc).__name__}); see its log",
                               type="server_error"), {}

    def authorised(request: Any) -> bool:
        if not settings.api_keys:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        given_b = given.strip().encode("utf-8", "replace")
        return any(hmac.compare_digest(given_b, key.encode("utf-8")) for key in settings.api_keys)

    def unauthorised() -> Any:
        return error(401, "a valid API key is needed: send 'Authorization: Bearer KEY' with a key this gateway "
                          "was given (--api-key-env)", "invalid_request_error", "invalid_api_key",
                     headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, exc: Any) -> Any:  # unknown paths, wrong methods: OpenAI's shape too
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", "invalid_request_error",
                     headers=getattr(exc, "headers", None))

    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok", "active": admission.active, "max_concurrent": settings.max_concurrent}

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        if not authorised(request):
            return unauthorised()
        return models_list(list(indexes), started)

    @app.get("/v1/models/{name:path}")
    async def model(name: str, request: Request) -> Any:
        if not authorised(request):
            return unauthorised()
        if name not in indexes:
            return no_model(name)
        return models_list([name], started)["data"][0]

    def no_model(name: str) -> Any:
        return error(404, f"the model {name!r} does not exist; this gateway serves: {', '.join(indexes)}",
                     "invalid_request_error", "model_not_found", "model")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        if not authorised(request):
            return unauthorised()
        try:
            turn = parse_chat_request(await _read_json(request))
        except RequestError as exc:
            return error(exc.status, str(exc), exc.type, exc.code, exc.param)
        if turn.model not in indexes:
            return no_model(turn.model)
        try:
            await admission.acquire()
        except Busy as exc:
            return error(429, f"the gateway is busy ({exc}); retry shortly", "rate_limit_error", "gateway_busy",
                         headers={"Retry-After": "1"})
        loop = asyncio.get_running_loop()
        deadline_s = min(settings.turn.timeout_s, turn.options.timeout_s or settings.turn.timeout_s)
        began = time.monotonic()
        ends = loop.time() + deadline_s + settings.grace_s
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the server stopped; nobody reads any more
                raise ClientGone("the gateway is shutting down") from None

        def work() -> None:
            try:
                result = run_turn(indexes[turn.model], turn.model, turn, settings.upstream, settings.turn,
                                  on_token=(lambda piece: put(("piece", piece))) if turn.stream else None,
                                  cancelled=cancelled)
                put(("done", result))
            except ClientGone:
                logger.info("client left; the turn on %s was abandoned", turn.model)
            except BaseException as exc:  # every failure reaches the client as an error
                try:
                    put(("error", exc))
                except ClientGone:
                    pass
            finally:
                admission.release_from_thread()

        try:
            workers.submit(work)
        except RuntimeError:  # shutting down
            admission.release()
            return error(503, "the gateway is shutting down", "server_error")

        async def next_item() -> tuple[str, Any]:
            try:
                return await asyncio.wait_for(queue.get(), timeout=max(ends - loop.time(), 0.001))
            except asyncio.TimeoutError as exc:
                cancelled.set()
                return "error", exc

        kind, value = await next_item()
        if kind == "error":
            cancelled.set()
            status, body, headers = refused(value, time.monotonic() - began, deadline_s)
            return JSONResponse(body, status_code=status, headers=headers)
        cid = new_id()
        if not turn.stream:
            ext = build_extension(value, span_chars=settings.span_chars)
            return completion(cid, turn.model, value.text, value.finish_reason, value.usage, ext)

        async def events(kind: str, value: Any) -> AsyncIterator[bytes]:
            created = int(time.time())
            try:
                yield sse(chunk(cid, turn.model, created, delta={"role": "assistant", "content": ""}))
                while True:
                    if kind == "piece":
                        yield sse(chunk(cid, turn.model, created, delta={"content": value}))
                    elif kind == "done":
                        ext = build_extension(value, span_chars=settings.span_chars)
                        yield sse(chunk(cid, turn.model, created, finish_reason=value.finish_reason,
                                        extension=None if turn.include_usage else ext))
                        if turn.include_usage:
                            yield sse(chunk(cid, turn.model, created, usage=value.usage, extension=ext))
                        break
                    else:
                        _, body, _ = refused(value, time.monotonic() - began, deadline_s)
                        yield sse(body)
                        break
                    kind, value = await next_item()
                yield sse("[DONE]")
            finally:
                cancelled.set()  # a client that left stops the upstream at its next piece

        return StreamingResponse(events(kind, value), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


async def _read_json(request: Any) -> Any:
    """The request body as JSON, at most ``MAX_BODY_BYTES``.

    Raises:
        RequestError: too large (413), or not JSON (400).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RequestError(f"the request body is larger than {MAX_BODY_BYTES >> 20} MiB", status=413)
    size, parts = 0, []
    async for part in request.stream():
        size += len(part)
        if size > MAX_BODY_BYTES:
            raise RequestError(f"the request body is larger than {MAX_BODY_BYTES >> 20} MiB", status=413)
        parts.append(part)
    try:
        return json.loads(b"".join(parts))
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"the request body is not JSON ({type(exc).__name__}: {str(exc)[:120]})") from None


def _shown_url(url: str) -> str:
    """``url`` without user:password@ and the trailing slash, as messages name it."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")


def _hide(message: str, upstream: str) -> str:
    """An upstream error as a client may see it: the upstream's address left out."""
    return message.replace(f"{upstream}/chat/completions", "the upstream").replace(upstream, "the upstream")
