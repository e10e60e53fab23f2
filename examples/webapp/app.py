"""HTTP routes of the web app: the page, the documents, uploads and questions.

Why FastAPI: typed request bodies, a test client and static files in a few
lines. Every route is a thin call into ``state`` or ``qa``, and every refusal
answers ``{"error": "<a whole sentence>"}`` with a 4xx status (5xx only when
the LLM or an optional package fails), so the page can show it as it is.
``guard`` checks Host and Origin before any route runs and adds the security
headers to every reply; error messages are scrubbed of server temp paths.

    uvicorn --factory examples.webapp.app:app_from_env   # options in $HYBRIDCTX_WEBAPP_ARGS
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from hybridctx.errors import HybridCtxError, LLMError, MissingDependencyError

try:
    from fastapi import FastAPI, File, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel
    from starlette.exceptions import HTTPException
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError("fastapi", "webapp", "the hybridctx web app") from exc

from .guard import HostPolicy, RequestGuard
from .qa import MIN_BUDGET, ask
from .state import UPLOAD_SUFFIXES, RequestError, WebState

__all__ = ["app_from_env", "create_app"]

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


class AskBody(BaseModel):
    """``POST /api/ask``: a question about one document within a token budget."""

    question: str
    doc_id: str
    budget: int = 1024
    profile: str | None = None


def create_app(state: WebState, *, close_on_shutdown: bool = False) -> FastAPI:
    """The FastAPI app over an already started ``state``.

    Args:
        state: the index and LLM (see :meth:`WebState.start`).
        close_on_shutdown: close ``state`` when the server stops.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if close_on_shutdown:
            state.close()

    # No /docs or /redoc: Swagger's page loads scripts from a CDN, which the CSP (rightly) forbids.
    app = FastAPI(title="hybridctx web app", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(RequestGuard, policy=HostPolicy.build(state.settings.host, state.settings.allowed_hosts))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        from hybridctx.routing.profiles import load_profiles

        settings = state.settings
        return {
            "llm": state.llm_label,
            "profile": settings.profile,
            "profiles": list(load_profiles()),
            "budget": {"default": settings.default_budget, "min": MIN_BUDGET},
            "answer_tokens": settings.answer_tokens,
            "upload": {"suffixes": list(UPLOAD_SUFFIXES), "max_bytes": settings.max_upload_bytes},
            "documents": [d.to_json() for d in state.documents.values()],
        }

    @app.get("/api/documents")
    def documents() -> dict[str, Any]:
        return {"documents": [d.to_json() for d in state.documents.values()]}

    @app.get("/api/document")
    def document(doc_id: str) -> dict[str, Any]:
        return state.document(doc_id).to_json(text=True)

    @app.post("/api/documents", status_code=201)
    def upload(file: UploadFile = File(...)) -> dict[str, Any]:
        data = file.file.read(state.settings.max_upload_bytes + 1)
        return state.add_upload(file.filename or "", data)

    @app.post("/api/ask")
    def ask_route(body: AskBody) -> dict[str, Any]:
        return ask(state, body.question, body.doc_id, body.budget, body.profile)

    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory``: the options of ``python -m examples.webapp`` from
    ``$HYBRIDCTX_WEBAPP_ARGS`` (e.g. ``--no-llm --index alice.idx``)."""
    from .cli import settings_from_args

    settings = settings_from_args(shlex.split(os.environ.get("HYBRIDCTX_WEBAPP_ARGS", "")))
    return create_app(WebState.start(settings), close_on_shutdown=True)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": _scrub(message)}, status_code=status, headers=headers)


def _scrub(message: str) -> str:
    """``message`` with every path under a temporary directory cut to its last part.

    Why: an index or upload kept in a temporary directory is named in some
    library errors, and a reply should not tell a client how the server's disk
    is laid out.
    """
    roots = {tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir()), "/tmp", "/var/tmp"}
    pattern = "|".join(re.escape(r.rstrip("/")) for r in sorted(roots, key=len, reverse=True))
    found = re.compile(rf"(?<![\w./-])(?:{pattern})(?![\w.-])((?:/[^\s'\"/]+)*)/?")
    return found.sub(lambda m: m.group(1).rsplit("/", 1)[-1] or "<temporary directory>", message)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "the request was refused"
        return _error(exc.status_code, f"{detail} (HTTP {exc.status_code})", getattr(exc, "headers", None))

    @app.exception_handler(RequestError)
    async def refused(_: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(MissingDependencyError)
    async def missing(_: Request, exc: MissingDependencyError) -> JSONResponse:
        return _error(501, str(exc))

    @app.exception_handler(LLMError)
    async def llm_failed(_: Request, exc: LLMError) -> JSONResponse:
        logger.warning("the LLM failed: %s", exc)
        return _error(502, f"the LLM failed: {exc}")

    @app.exception_handler(HybridCtxError)
    async def bad_input(_: Request, exc: HybridCtxError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(422, "invalid request: " + "; ".join(parts))
