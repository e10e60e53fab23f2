"""``HybridContext``: the one object most users touch.

Why a facade: it composes the encoder, the landmark store and the retriever
that the index was built with, so a user opens an index and asks questions
without wiring parts. It holds no retrieval logic of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridctx.datatypes import PackedContext
from hybridctx.indexers.vectors.store_protocol import StoreKind
from hybridctx.ingest.indexing import IndexReport, build_index
from hybridctx.retrieval.retriever import RetrievalConfig, RetrievalOptions, Retriever
from hybridctx.routing.answering import answer_question

if TYPE_CHECKING:
    from hybridctx.embeddings.protocol import LandmarkEncoder
    from hybridctx.indexers.landmark_store import LandmarkStore
    from hybridctx.packing.tokens import TokenCounter
    from hybridctx.routing.router import RouteDecision, RouteLimits, Router
    from hybridctx.routing.session_ledger import SessionLedger

__all__ = ["HybridContext"]

logger = logging.getLogger(__name__)


class HybridContext:
    """An opened landmark index: build → retrieve → route → ask.

    Use :meth:`build` to index documents and :meth:`open` to load an index.

    Args:
        store: the index's landmark store.
        encoder: the encoder the index was built with (queries only).
        config: how the index is searched (defaults: :class:`RetrievalConfig`).
        path: the index directory, where the session ledger lives (``None``: no ledger).
    """

    def __init__(self, store: LandmarkStore, encoder: LandmarkEncoder, config: RetrievalConfig | None = None,
                 path: str | None = None) -> None:
        self.store = store
        self.encoder = encoder
        self.path = path
        self.retriever = Retriever(store, encoder, config)

    def close(self) -> None:
        """Closes the index (its tables and any vector-store connection)."""
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> HybridContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building --------------------------------------------------------
    @staticmethod
    def build(
        paths: str | Path | Sequence[str | Path],
        index_dir: str | Path,
        *,
        encoder: Mapping[str, Any] | LandmarkEncoder | None = None,
        kind: str | None = None,
        skip_bad: bool = False,
        show_progress: bool | None = None,
        store: StoreKind | None = None,
        store_url: str | None = None,
        wait_s: float | None = None,
    ) -> IndexReport:
        """Index files (``.txt .md .html .pdf .jsonl`` or directories) into ``index_dir``.

        Re-indexing adds new documents, replaces changed ones and skips
        unchanged ones. An existing index keeps its own encoder settings unless
        ``encoder`` names others (a mismatch is refused).

        Args:
            paths: files or directories.
            index_dir: the index directory.
            encoder: encoder settings (see ``EncoderConfig``) or an encoder object
                (:func:`~hybridctx.embeddings.load_encoder` records its backend
                in the manifest, so :meth:`open` rebuilds the same encoder).
            kind: FAISS factory string for a new index (default ``auto``: exact
                ``Flat``, rebuilt as ``HNSW32`` once it holds 20k vectors on a CPU).
            skip_bad: skip bad files/lines with a warning instead of failing.
            show_progress: progress bar (``None``: on a terminal).
            store: where a new index keeps its vectors: ``faiss`` (default, in
                ``index_dir``), ``pgvector`` or ``qdrant``; an update keeps the index's.
            store_url: the store's location: ``postgresql://...`` or a local
                PostgreSQL data directory; a Qdrant URL, directory or ``:memory:``.
                Default: a sibling of ``index_dir`` (``DIR.pgdata``, ``DIR.qdrant``).
                Never written down with its password.
            wait_s: how long to wait while another process writes the same index
                (``None``: as long as it takes; ``0``: raise ``IndexLockedError`` at once).
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        enc = _encoder_for(index_dir, encoder)
        return build_index(list(paths), index_dir, encoder=enc, kind=kind, skip_bad=skip_bad,
                           show_progress=show_progress, store=store, store_url=store_url, wait_s=wait_s)

    # -- opening ---------------------------------------------------------
    @classmethod
    def open(cls, index_dir: str | Path, *, config: RetrievalConfig | None = None, device: str = "auto",
             verify: bool = True, store_url: str | None = None) -> HybridContext:
        """Load an index and the encoder it was built with (reconnecting its vector store).

        The encoder is rebuilt by the backend the manifest records (built-in or
        an installed plug-in, never code the manifest names); an index written
        before backends were recorded opens with the windowed encoder.

        ``store_url`` overrides the manifest's store location (e.g. to give a
        password); ``$HYBRIDCTX_STORE_URL`` does the same.

        Raises:
            IndexNotFoundError, IndexCorruptError, IndexVersionError: the index is unusable.
            IndexStoreError: its encoder backend is not installed here.
        """
        from hybridctx.indexers import LandmarkStore, read_manifest

        manifest = read_manifest(index_dir, verify=verify)
        encoder = _encoder_from_identity(manifest.get("encoder") or {}, device)
        store = LandmarkStore.load(index_dir, verify=False, store_url=store_url)
        return cls(store, encoder, config, str(index_dir))

    @staticmethod
    def describe(index_dir: str | Path) -> dict[str, Any]:
        """The manifest facts of an index (checked), for ``hybridctx info``."""
        from hybridctx.indexers import read_manifest

        manifest = read_manifest(index_dir, verify=True)
        return {
            "index": str(index_dir),
            "format": f"{manifest.get('format')} v{manifest.get('format_version')}",
            "library_version": manifest.get("library_version"),
            "created": manifest.get("created"),
            "encoder": manifest.get("encoder"),
            "vectors": manifest.get("index"),
            "store": manifest.get("store") or {"kind": "faiss"},
            "counts": manifest.get("counts"),
            "lexical": manifest.get("lexical"),
            "files": {name: meta.get("bytes") for name, meta in (manifest.get("files") or {}).items()},
        }

    @staticmethod
    def delete(index_dir: str | Path, doc_ids: Sequence[str], *, wait_s: float | None = None,
               store_url: str | None = None) -> int:
        """Delete documents from an index (saved atomically); returns how many existed.

        Holds the index's writer lock from load to save (``wait_s`` as in :meth:`build`).
        """
        from hybridctx.indexers.writer_lock import writer_lock

        with writer_lock(index_dir, wait_s=wait_s):
            return _delete_locked(index_dir, doc_ids, store_url)

    # -- routing ---------------------------------------------------------
    def route(
        self,
        query: str,
        *,
        profile: str = "smollm2-135m-cpu",
        limits: RouteLimits | None = None,
        doc_ids: Sequence[str] | None = None,
        budget: int | None = None,
        profiles_file: str | Path | None = None,
        expected_questions: int = 1,
        session: bool = True,
        session_salt: str = "",
    ) -> RouteDecision:
        """Decide full context or retrieval for ``query`` under a model profile.

        Args:
            expected_questions: questions the caller expects on this scope
                within the profile's cache TTL, this one included (the cache
                write of a cold scope is amortised over them).
            session: consult the session ledger beside the index
                (:mod:`hybridctx.routing.session_ledger`): a scope whose full context
                was sent within the TTL is priced warm. Routing never writes it;
                :meth:`record_full_send` does, once a full context was sent.
            session_salt: whatever else sits in the cached prefix (a chat's
                system prompt), so that a different prefix is not taken as warm.

        Returns:
            A :class:`~hybridctx.routing.router.RouteDecision` with its estimates.
        """
        from hybridctx.routing.profiles import get_profile, profile_counter
        from hybridctx.routing.router import Router

        model = get_profile(profile, profiles_file)
        if doc_ids:
            self.store.rows_for_documents(doc_ids)  # unknown ids fail with a clear error
        full = full_context_tokens(self.store, profile_counter(model), doc_ids)
        warm = False
        ledger = self.session_ledger(model.name) if session else None
        if ledger is not None and model.caches_prefix:
            warm = ledger.is_warm(self._scope(doc_ids), model.cache_ttl_s, tokens=full, salt=session_salt)
        router = Router(model, limits)
        decision = router.decide(query, full, budget, warm=warm, expected_questions=expected_questions)
        if router.limits.adaptive_budget and decision.mode == "retrieval":
            decision = self._adapt(router, query, decision, doc_ids, full, profile_counter(model).name)
        return decision

    def _adapt(self, router: Router, query: str, decision: RouteDecision, doc_ids: Sequence[str] | None,
               full: int, tokenizer: str) -> RouteDecision:
        """The decision at the budget retrieval's confidence picks (:mod:`hybridctx.retrieval.confidence`)."""
        from hybridctx.retrieval.confidence import adapt, budget_range, measure

        lo, hi = budget_range(router, decision.budget)
        signals: dict[str, Any] = {}
        self.retriever.candidates(query, doc_ids, budget=hi, signals=signals)
        packed = self.retrieve(query, lo, tokenizer=tokenizer, doc_ids=doc_ids)
        return adapt(router, decision, measure(query, signals, [s.text for s in packed.spans]), full)

    def session_ledger(self, profile: str) -> SessionLedger | None:
        """The :class:`~hybridctx.routing.session_ledger.SessionLedger` of this index for ``profile``
        (``None`` for an index opened without a directory)."""
        from hybridctx.routing.session_ledger import SessionLedger

        return None if self.path is None else SessionLedger(self.path, profile)

    def record_full_send(self, profile: str, doc_ids: Sequence[str] | None, tokens: int, *, salt: str = "") -> bool:
        """Note in the session ledger that the full context of this scope was just sent.

        ``tokens`` is the scope's full-context size as :meth:`route` counts it
        (``RouteDecision.estimates["full"]`` less the prompt), so the next route
        matches it. Returns ``False`` when there is no ledger or it could not be written.
        """
        ledger = self.session_ledger(profile)
        return False if ledger is None else ledger.record(self._scope(doc_ids), tokens, salt=salt)

    def _scope(self, doc_ids: Sequence[str] | None) -> list[str]:
        return list(dict.fromkeys(doc_ids)) if doc_ids else list(self.store.doc_ids())

    # -- retrieval -------------------------------------------------------
    def retrieve(self, query: str, budget: int | None = None, /, *, options: RetrievalOptions | None = None,
                 **overrides: Any) -> PackedContext:
        """Retrieve and pack spans for ``query`` into ``budget`` tokens.

        ``hc.retrieve("q", 1000)``, ``hc.retrieve("q", budget=1000, doc_ids=[...])``
        or ``hc.retrieve("q", options=RetrievalOptions(budget=1000, ...))``:
        the options are the fields of :class:`RetrievalOptions`; see
        :meth:`Retriever.retrieve`.
        """
        return self.retriever.retrieve(query, budget, options=options, **overrides)

    # -- answering -------------------------------------------------------
    #: ``hc.ask(query, llm, ...)``: route, gather context, generate, escalate once
    #: (:func:`hybridctx.routing.answering.answer_question`, declared once, there).
    ask = answer_question


def _delete_locked(index_dir: str | Path, doc_ids: Sequence[str], store_url: str | None) -> int:
    from hybridctx.errors import InputError
    from hybridctx.indexers import LandmarkStore

    store = LandmarkStore.load(index_dir, store_url=store_url)
    try:
        missing = [d for d in doc_ids if not store.has_document(d)]
        if missing:
            raise InputError(f"no document {missing[0]!r} in the index at '{index_dir}'; nothing was deleted "
                             "(list the ids with: hybridctx info --docs --index DIR)")
        for doc_id in doc_ids:
            store.delete_document(doc_id)
        store.save(index_dir)  # also deletes their vectors from an external store
    finally:
        store.close()
    return len(doc_ids)


def full_context_tokens(store: LandmarkStore, counter: TokenCounter, doc_ids: Sequence[str] | None = None) -> int:
    """Tokens of every document in scope, as the full-context mode would send them."""
    ids = list(dict.fromkeys(doc_ids)) if doc_ids else store.doc_ids()
    return sum(counter.count(store.text(doc_id)) for doc_id in ids)


def _encoder_for(index_dir: str | Path, encoder: Mapping[str, Any] | LandmarkEncoder | None) -> LandmarkEncoder:
    """The encoder a build uses: the one given, the existing index's own (its recorded
    backend and settings), or one made from settings by :func:`load_encoder`."""
    if encoder is not None and not isinstance(encoder, Mapping):
        return encoder
    settings = dict(encoder or {})
    manifest_path = Path(index_dir) / "manifest.json"
    if manifest_path.exists() and "model" not in settings:
        from hybridctx.indexers import read_manifest

        identity = read_manifest(index_dir, verify=False).get("encoder") or {}
        return _encoder_from_identity(identity, settings.get("device", "auto"))
    from hybridctx.embeddings.registry import encoder_from_settings

    return encoder_from_settings(settings)  # the windowed encoder, or a pooled one (api:..., pooled:...)


def _encoder_from_identity(identity: Mapping[str, Any], device: str) -> LandmarkEncoder:
    """The encoder an index's manifest records (a seam the tests reuse a loaded encoder through)."""
    from hybridctx.embeddings.registry import encoder_from_manifest

    return encoder_from_manifest(identity, device)
