"""hybridctx itself as a method of the evaluation harness.

Why: the harness scores every method through the same small protocol, so
hybridctx's variants (encoders, search modes, span growth) are measured
exactly like the peers. Variants that share an encoder share one in-memory
index, so trying retrieval settings costs no re-encoding.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from hybridctx.datatypes import Document
from hybridctx.retrieval.retriever import RetrievalConfig, Retriever

__all__ = ["HybridCtxMethod"]

PackedRange = tuple[str, int, int]
_STORES: dict[str, Any] = {}


class HybridCtxMethod:
    """hybridctx retrieval (landmarks → spans → exact packing) for the harness.

    Args:
        name: how the method is shown in tables.
        encoder: encoder settings (``EncoderConfig`` fields) or an encoder object.
        config: retrieval settings.
        tokenizer: the tokenizer budgets are counted in.
        show_progress: progress bar while indexing.
        cache_dir: keep each built index here (keyed by encoder and corpus) and
            reuse it in later runs, so retrieval settings can be tuned without
            re-encoding.
    """

    def __init__(
        self,
        name: str = "hybridctx",
        *,
        encoder: Mapping[str, Any] | Any | None = None,
        config: RetrievalConfig | None = None,
        tokenizer: str = "cl100k_base",
        show_progress: bool | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.name = name
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._encoder_spec = encoder
        self.config = config or RetrievalConfig()
        self.tokenizer = tokenizer
        self.show_progress = show_progress
        self._encoder: Any = None
        self._retriever: Retriever | None = None
        self._cache: dict[tuple[str, tuple[str, ...] | None, int, bool], list] = {}

    def _get_encoder(self) -> Any:
        if self._encoder is None:
            from hybridctx.embeddings.registry import encoder_from_settings

            spec = self._encoder_spec
            if spec is None or isinstance(spec, Mapping):  # windowed, or pooled for api:... / pooled:...
                self._encoder = encoder_from_settings(spec)
            else:
                self._encoder = spec
        return self._encoder

    def prepare(self, docs: Mapping[str, str]) -> None:
        from hybridctx.indexers import LandmarkStore
        from hybridctx.ingest.indexing import index_documents

        encoder = self._get_encoder()
        identity = dict(encoder.identity)
        key = _fingerprint(identity, docs)
        store = _STORES.get(key)
        cached = self.cache_dir / key[:24] if self.cache_dir else None
        if store is None and cached is not None and (cached / "manifest.json").exists():
            _STORES.clear()
            store = _STORES[key] = LandmarkStore.load(cached, expected_encoder=identity)
        if store is None:
            _STORES.clear()  # one corpus at a time keeps memory bounded
            store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=identity)
            documents = (Document(doc_id, text) for doc_id, text in docs.items())
            index_documents(documents, store, encoder, show_progress=self.show_progress)
            store.lexical()
            if cached is not None:
                store.save(cached)
            _STORES[key] = store
        self._retriever = Retriever(store, encoder, self.config)
        self._cache.clear()

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list[PackedRange]:
        from hybridctx.packing.tokens import get_counter

        if self._retriever is None:
            raise RuntimeError("prepare() must be called before retrieve()")
        # Candidates are reused across budgets that take as many hits and agree on the
        # second hop; a budget that takes more (RetrievalConfig.candidates_for) or
        # turns the hop on (second_hop_runs) searches again.
        count = self.config.candidates_for(budget)
        key = (query, tuple(doc_ids) if doc_ids is not None else None, count, self.config.second_hop_runs(budget))
        found = self._cache.get(key)
        if found is None:
            found = self._retriever.candidates(query, doc_ids, budget=budget)
            # Only the current question's searches are kept.
            self._cache = {k: v for k, v in self._cache.items() if k[:2] == key[:2]}
            self._cache[key] = found
        packed = self._retriever.pack(found, budget, get_counter(self.tokenizer), query=query)
        return [(s.doc_id, s.start, s.end) for s in packed.spans]

    def signals(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> dict[str, Any]:
        """The rankings behind the candidates at ``budget`` (``Retriever.candidates(signals=...)``),
        for :mod:`hybridctx.retrieval.confidence`."""
        if self._retriever is None:
            raise RuntimeError("prepare() must be called before signals()")
        found: dict[str, Any] = {}
        self._retriever.candidates(query, doc_ids, budget=budget, signals=found)
        return found

    def with_config(self, name: str, **changes: Any) -> "HybridCtxMethod":
        """A variant sharing this method's encoder (and so its index)."""
        other = HybridCtxMethod(name, encoder=self._encoder_spec, config=replace(self.config, **changes),
                                tokenizer=self.tokenizer, show_progress=self.show_progress,
                                cache_dir=self.cache_dir)
        other._encoder = self._encoder
        return other


def _fingerprint(identity: Mapping[str, Any], docs: Mapping[str, str]) -> str:
    h = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    for doc_id in sorted(docs):
        h.update(doc_id.encode())
        h.update(hashlib.sha256(docs[doc_id].encode()).digest())
    return h.hexdigest()
