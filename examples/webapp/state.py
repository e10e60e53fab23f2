"""The web app's index, documents and LLM, behind one worker thread.

Why a worker thread: the landmark store keeps its tables in SQLite, whose
connections belong to the thread that opened them, while a web server answers
each request on whatever thread is free. So every index operation (building,
indexing an upload, routing, retrieving, answering) runs on the one thread
owned here, which also keeps them from running over each other. Document texts
are cached after each load so that showing a document never waits for a
question to finish.
"""

from __future__ import annotations

import logging
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import hybridctx
from hybridctx.errors import ConfigError, DocumentError, InputError

__all__ = ["MAX_NAME_CHARS", "UPLOAD_SUFFIXES", "DocumentInfo", "RequestError", "WebSettings", "WebState",
           "bundled_documents"]

logger = logging.getLogger(__name__)

SAMPLES = Path(hybridctx.__file__).resolve().parent / "samples"
#: What an upload may be; the loader reads each kind (``.pdf`` needs ``pypdf``).
UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
#: The longest upload name kept as a document id (a file name holds 255 bytes; the id is ASCII).
MAX_NAME_CHARS = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_SHOWN = 60  # longest upload name quoted back in a refusal
T = TypeVar("T")


class RequestError(InputError):
    """A request the app refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def bundled_documents() -> list[Path]:
    """The sample texts shipped inside the package (the Alice book)."""
    return sorted(SAMPLES.glob("*.txt"))


@dataclass(frozen=True)
class WebSettings:
    """How the app is set up.

    Attributes:
        index_dir: where the index lives (``None``: a temporary directory,
            removed on close; the bundled book is then re-indexed at each start).
        llm: ``local`` (SmolLM2 on this machine), an OpenAI-compatible base URL,
            or ``None`` for retrieval only (no answer).
        model: the model name a URL serves (required with a URL).
        profile: the model profile the router costs against by default.
        documents: further files or directories indexed at start.
        bundled: index the bundled sample book at start.
        answer_tokens: the longest answer, also reserved by the router.
        default_budget: the retrieval budget the page starts with.
        max_upload_bytes: the largest upload accepted.
        host: the address the server listens on (``--host``); a ``Host``
            header naming it is accepted, as are 127.0.0.1, localhost and ::1.
        allowed_hosts: further ``NAME`` or ``NAME:PORT`` a ``Host`` header
            may carry (``--allow-host``), e.g. behind a reverse proxy.
    """

    index_dir: Path | None = None
    llm: str | None = "local"
    model: str | None = None
    profile: str = "smollm2-135m-cpu"
    documents: tuple[Path, ...] = ()
    bundled: bool = True
    answer_tokens: int = 192
    default_budget: int = 1024
    max_upload_bytes: int = 20 * 2**20
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from hybridctx.routing.profiles import get_profile

        from .guard import HostPolicy

        get_profile(self.profile)  # an unknown name fails here, naming close matches
        HostPolicy.build(self.host, self.allowed_hosts)  # a malformed --allow-host fails here
        if self.llm is not None and self.llm.startswith(("http://", "https://")) and not self.model:
            raise ConfigError(f"an LLM at a URL ('{self.llm}') needs a model name; pass --model NAME")
        if self.answer_tokens < 1:
            raise ConfigError(f"answer_tokens {self.answer_tokens} must be at least 1")
        if self.default_budget < 1:
            raise ConfigError(f"default_budget {self.default_budget} must be at least 1 token")
        if self.max_upload_bytes < 1:
            raise ConfigError(f"max_upload_bytes {self.max_upload_bytes} must be positive")
        if not self.bundled and not self.documents and self.index_dir is None:
            raise ConfigError("there is nothing to serve: keep the bundled book, pass documents, or an index")


@dataclass(frozen=True)
class DocumentInfo:
    """One indexed document as the page lists and shows it."""

    doc_id: str
    title: str | None
    text: str
    bundled: bool

    def to_json(self, *, text: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"doc_id": self.doc_id, "title": self.title or self.doc_id,
                               "chars": len(self.text), "bundled": self.bundled}
        if text:
            out["text"] = self.text
        return out


class WebState:
    """The opened index (``hc``), its documents, and the LLM (``None``: retrieval only).

    Build it with :meth:`start`; call :meth:`close` when done.
    """

    def __init__(self, settings: WebSettings, *, encoder: Any = None, llm: Any = None) -> None:
        self.settings = settings
        self.llm = llm
        self.hc: Any = None
        self.documents: dict[str, DocumentInfo] = {}
        self.bundled_ids = {p.name for p in bundled_documents()} if settings.bundled else set()
        self._encoder = encoder
        self._tmp = None if settings.index_dir else tempfile.TemporaryDirectory(prefix="hybridctx-webapp-")
        self.index_dir = Path(settings.index_dir) if settings.index_dir else Path(self._tmp.name) / "index"
        self._worker: ThreadPoolExecutor | None = ThreadPoolExecutor(1, thread_name_prefix="hybridctx-webapp")

    @classmethod
    def start(cls, settings: WebSettings, *, encoder: Any = None, llm: Any = None) -> WebState:
        """Index the start-up documents, open the index and load the LLM.

        Args:
            settings: the set-up.
            encoder: a landmark encoder to reuse (default: the index's own, or
                the packaged MiniLM for a new index).
            llm: an ``LLM`` to reuse instead of loading ``settings.llm``.
        """
        state = cls(settings, encoder=encoder, llm=llm)
        try:
            state.call(state._startup)
            if state.llm is None and settings.llm is not None:
                from hybridctx.llms import load_llm

                logger.info("loading the LLM %s ...", settings.llm)
                state.llm = load_llm(settings.llm, model=settings.model)
        except BaseException:
            state.close()
            raise
        return state

    @property
    def llm_label(self) -> str | None:
        """What answers: ``local``, ``MODEL @ URL``, or ``None`` (retrieval only)."""
        if self.llm is None:
            return None
        url = getattr(self.llm, "base_url", None)
        name = getattr(self.llm, "name", None) or type(self.llm).__name__
        return f"{name} @ {url}" if url else str(name)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the index thread and return its result (or raise its error)."""
        if self._worker is None:
            raise RuntimeError("the web app's index is closed")
        return self._worker.submit(fn, *args).result()

    def document(self, doc_id: str) -> DocumentInfo:
        """A cached document, or a 404 naming the documents there are."""
        found = self.documents.get(doc_id)
        if found is None:
            known = ", ".join(repr(d) for d in sorted(self.documents)[:10])
            raise RequestError(f"no document {doc_id!r} in this app's index; choose one of: {known}", 404)
        return found

    def add_upload(self, filename: str, data: bytes) -> dict[str, Any]:
        """Index an uploaded file (its name, made safe, becomes the document id).

        Raises:
            RequestError: unsupported kind (415), too large (413), empty,
                unreadable or named too long (400), or named like a bundled
                document (409).
        """
        shown = _shown(filename or "")
        name = _UNSAFE.sub("_", _basename(filename or "")).strip(" .")
        suffix = Path(name).suffix.lower()
        if not name or suffix not in UPLOAD_SUFFIXES:
            raise RequestError(f"cannot index {shown}: upload a file ending in "
                               f"{', '.join(UPLOAD_SUFFIXES)}", 415)
        if len(name) > MAX_NAME_CHARS:
            raise RequestError(f"the file name {shown} is {len(name):,} characters long; rename the file to "
                               f"at most {MAX_NAME_CHARS} characters and upload it again", 400)
        limit = self.settings.max_upload_bytes
        if len(data) > limit:
            raise RequestError(f"{shown} is larger than the {limit:,}-byte upload limit; "
                               "upload a smaller file or index it with --doc", 413)
        if not data.strip():
            raise RequestError(f"{shown} is empty; upload a file with some text", 400)
        if name in self.bundled_ids:
            raise RequestError(f"{name!r} is the name of a bundled document; rename the file and upload it again", 409)
        return self.call(self._index_upload, name, data)

    def close(self) -> None:
        """Close the index, stop the worker and remove a temporary index directory."""
        if self._worker is not None:
            if self.hc is not None:
                self._worker.submit(self.hc.store.close).result()
                self.hc = None
            self._worker.shutdown(wait=True)
            self._worker = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- on the worker thread --------------------------------------------------------------

    def _startup(self) -> None:
        from hybridctx import HybridContext, load_encoder

        if self._encoder is None:
            if (self.index_dir / "manifest.json").exists():
                opened = HybridContext.open(self.index_dir)  # keeps the index's own encoder settings
                self._encoder = opened.encoder
                opened.store.close()
            else:
                self._encoder = load_encoder()
        paths = (bundled_documents() if self.settings.bundled else []) + list(self.settings.documents)
        if paths:
            logger.info("indexing %s into %s ...", ", ".join(p.name for p in paths), self.index_dir)
            report = HybridContext.build(paths, self.index_dir, encoder=self._encoder, show_progress=False)
            logger.info("%s", report.summary())
        self._reload()

    def _index_upload(self, name: str, data: bytes) -> dict[str, Any]:
        from hybridctx import HybridContext

        with tempfile.TemporaryDirectory(prefix="hybridctx-upload-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                report = HybridContext.build([path], self.index_dir, encoder=self._encoder, show_progress=False)
            except DocumentError as exc:  # its message names the temporary copy: name the upload instead
                raise RequestError(f"cannot index {name!r}: {exc.reason}", 400) from None
        logger.info("upload %s: %s", name, report.summary())
        self._reload()
        return {"document": self.documents[name].to_json(), "report": report.summary()}

    def _reload(self) -> None:
        from hybridctx import HybridContext
        from hybridctx.indexers import LandmarkStore

        store = LandmarkStore.load(self.index_dir)
        old, self.hc = self.hc, HybridContext(store, self._encoder, None, str(self.index_dir))
        if old is not None:
            old.store.close()
        docs = {}
        for doc_id in store.doc_ids():
            doc = store.document(doc_id)
            docs[doc_id] = DocumentInfo(doc_id, doc.title, doc.text, doc_id in self.bundled_ids)
        self.documents = docs


def _basename(filename: str) -> str:
    """The last part of an upload's name, whichever separator the sender's system uses."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _shown(filename: str) -> str:
    """An upload's name quoted for a message, cut to a readable length."""
    return repr(filename if len(filename) <= _SHOWN else filename[:_SHOWN] + "…")
