"""Query → landmark hits (dense, lexical, fused) → spans → packed context.

Why one module: this is the hot path of every question, and its stages are
timed together so ``retrieve --json`` can report where the milliseconds went.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Sequence, get_args

import numpy as np

from hybridctx.datatypes import PackedContext
from hybridctx.retrieval.document_cache import DocumentCache
from hybridctx.errors import ConfigError
from hybridctx.retrieval.fusion import reciprocal_rank_fusion
from hybridctx.packing.packer import PackOrder, SpanCandidate, pack
from hybridctx.retrieval.query_hints import PositionHint, QueryHints, detect_position, hints_for
from hybridctx.retrieval.second_hop import hop_query, seed_span
from hybridctx.retrieval.spans import GrowthRule, grow_spans
from hybridctx.ingest.structure import matches_hints, structural_units
from hybridctx.packing.tokens import TokenCounter, get_counter

__all__ = ["RetrievalConfig", "RetrievalOptions", "Retriever", "SearchMode", "short_header"]

logger = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "dense", "lexical"]


@dataclass(frozen=True)
class RetrievalConfig:
    """How hits are found, grown and packed.

    Attributes:
        mode: ``hybrid`` (dense + BM25 fused), ``dense`` or ``lexical``.
        candidates: hits taken from each search before fusion, at least
            (see ``candidates_per_ktoken``).
        candidates_per_ktoken: hits per 1,024 tokens of budget: a search for
            ``budget`` tokens takes ``max(candidates, ceil(budget / 1024 *
            candidates_per_ktoken))`` hits from each ranking, so a large budget
            can be filled with evidence rather than with the neighbours of a
            fixed number of hits. With the defaults budgets up to 2,048 take
            100 and 8,192 takes 400: a fixed pool runs out of evidence at large
            budgets (measured: docs/benchmarks.md#change-1-the-candidate-count-grows-with-the-budget).
            0 keeps ``candidates`` at every budget.
        rrf_k: reciprocal-rank-fusion damping constant.
        dense_weight: weight of the dense ranking in fusion.
        lexical_weight: weight of the BM25 ranking in fusion.
        unreadable_query_ratio: when more than this share of a query's
            characters are outside what the encoder can read (e.g. Chinese
            for an English-only model), the dense ranking is dropped. 0.2:
            MiniLM's vocabulary holds many CJK characters one by one, so
            12–19% of the Chinese dev questions read as over half known
            (none over 80%) while every English one reads as fully known.
        lexical_context: sentences before and after each sentence whose BM25
            scores add to its own (within its paragraph), so a landmark is
            ranked by the passage it ends, not by one sentence's words;
            ``(0, 0)`` ranks bare sentences.
        lexical_neighbour_weight: weight of each neighbour's score.
        growth: how a hit grows into a span.
        max_span_share: largest share of the budget one span may take (it is
            trimmed around its best hit beyond that); ``None`` = no cap.
        max_span_tokens: most tokens one span may take at any budget (trimmed
            the same way); ``None`` = no cap. With both caps, the larger holds:
            a span may always take ``max_span_tokens``, and a share of a large
            budget (the default: 384 tokens up to a 1,536-token budget, a
            quarter above). So a few long merged spans no longer crowd a
            budget's other evidence out (contract clauses, dialogues). Neither
            holds for a question that asks for a whole unit (the k-th topic,
            section or session, or the whole corpus: see
            :meth:`QueryHints.asks_for_unit`), whose evidence is that unit, nor
            when the dense ranking did not run (see :meth:`Retriever.pack`).
        order: layout of packed spans.
        markers: a source marker line before each span.
        position_weight: weight in the fusion of a ranking by distance from
            the start (or end) of each document, added only when the question
            asks about a position ("the first topic", "how does the story
            end", 第三个话题; see :mod:`hybridctx.retrieval.query_hints`); when an ordinal
            names a unit the document's structure has ("the third section", "the
            second session", 第五回), the ranking starts at that unit instead;
            0 turns it off.
        header_weight: weight of a second BM25 field, each landmark's header
            path (title › section › subsection, or the session header;
            :mod:`hybridctx.ingest.structure`), added to its sentence's BM25 score, so
            a clause is found by the heading it sits under ("Governing Law");
            0 ranks sentences alone. 2 (the default) finds contract clauses by
            their headings at every budget and costs no set more than one
            question (measured: docs/benchmarks.md#structure-and-query-hints-issue-13).
            The header index is built on the first query that needs it and not
            saved, so beyond 200,000 landmarks (where building it would stall
            that query) the field is skipped.
        hint_weight: weight in the fusion of a ranking of the dense and BM25 hits
            that lie under what the question names — a date or date range (the
            turn's or session's date), a speaker (the turn's), a section by
            number or title (a heading above it); see :mod:`hybridctx.retrieval.query_hints`.
            0 (the default) turns it off.
        header_markers: each marker line also names where its span stands:
            ``[3] contract.pdf § Agreement › 12. GOVERNING LAW``, the last two
            levels of its first sentence's header path (without the speaker;
            a level that only repeats the document id is left out; 60
            characters at most), counted in the budget. Off by default: at
            equal budgets the longer markers cost evidence recall
            (measured: docs/benchmarks.md#structure-and-query-hints-issue-13).
        second_hop_weight: weight in the fusion of each ranking of a second search
            whose query is the question plus the best first-hop passage
            (:mod:`hybridctx.retrieval.second_hop`), so a passage that shares words only
            with the first one (a bridge entity) is found; 0 turns it off. On by
            default only across documents (hotpotqa: gains, no cell lower;
            docs/benchmarks.md).
        second_hop_words: words of the first-hop passage the second query takes.
        second_hop_searches: which searches the second hop repeats (``dense``,
            ``lexical`` or both); each runs only where the first hop ran it.
        second_hop_across_documents: the second hop runs only when the search
            spans more than one document (a corpus, not one document). A bridge to another article is what the hop
            finds; inside one document span growth already reads the neighbours,
            and there the hop's passages displaced first-hop evidence (locomo and
            leval at 512, docs/benchmarks.md). On by default.
        second_hop_min_budget: the second hop runs only for budgets of at least
            this many tokens (0: at every budget, and when no budget is known). Small
            budgets hold few spans, and the hop's passages displace first-hop evidence
            there, while large ones have room for both.
        fusion: ``rrf`` (by rank) or ``convex`` (weighted sum of min-max normalised
            scores; measured, not the default).
        convex_dense_share: the dense side's share in ``convex`` fusion.
        passage_weight: weight in the fusion of a BM25 ranking of each landmark by the
            passage it ends (:mod:`hybridctx.retrieval.passage_lexical`), so a question
            whose words are spread over neighbouring turns or sentences is matched. It
            runs beside the dense ranking only: with BM25 alone (an unreadable query, or
            ``lexical`` mode) it cost the Chinese sets at 512 tokens at every weight
            tried; nor for a positional question. 0.25 lifts dialogues most and costs no set more than one question
            (measured: docs/benchmarks.md#bm25-over-the-passage-a-landmark-ends-session-11);
            0 turns it off.
        passage_sentences: sentences in that passage, at most (the landmark's own and
            the ones before it).
        passage_tokens: encoder tokens in that passage, at most (0: no limit).
        passage_within: how far back a passage reaches: ``document``, ``paragraph``
            (not past a blank line) or ``section`` (not out of its header path).
    """

    mode: SearchMode = "hybrid"
    candidates: int = 100
    candidates_per_ktoken: float = 50.0
    rrf_k: float = 20.0
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    unreadable_query_ratio: float = 0.2
    lexical_context: tuple[int, int] = (0, 0)
    lexical_neighbour_weight: float = 0.5
    growth: GrowthRule = field(default_factory=GrowthRule)
    max_span_share: float | None = 0.25
    max_span_tokens: int | None = 384
    order: PackOrder = "document"
    markers: bool = True
    position_weight: float = 2.0
    header_weight: float = 2.0
    hint_weight: float = 0.0
    header_markers: bool = False
    second_hop_weight: float = 0.5
    second_hop_words: int = 64
    second_hop_searches: tuple[str, ...] = ("dense", "lexical")
    second_hop_min_budget: int = 0
    second_hop_across_documents: bool = True
    fusion: str = "rrf"
    convex_dense_share: float = 0.5
    passage_weight: float = 0.25
    passage_sentences: int = 4
    passage_tokens: int = 0
    passage_within: str = "paragraph"

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "convex"):
            raise ConfigError(f"fusion '{self.fusion}' is not one of rrf, convex")
        if not (math.isfinite(self.convex_dense_share) and 0 <= self.convex_dense_share <= 1):
            raise ConfigError(f"convex_dense_share {self.convex_dense_share} must be between 0 and 1")
        if not (math.isfinite(self.passage_weight) and self.passage_weight >= 0):
            raise ConfigError(f"passage_weight {self.passage_weight} must be >= 0 (0 turns the passage ranking off)")
        if isinstance(self.passage_sentences, bool) or not isinstance(self.passage_sentences, int) \
                or self.passage_sentences < 1:
            raise ConfigError(f"passage_sentences {self.passage_sentences!r} must be a whole number >= 1")
        if isinstance(self.passage_tokens, bool) or not isinstance(self.passage_tokens, int) \
                or self.passage_tokens < 0:
            raise ConfigError(f"passage_tokens {self.passage_tokens!r} must be a whole number >= 0 (0: no token limit)")
        if self.passage_within not in ("document", "paragraph", "section"):
            raise ConfigError(f"passage_within '{self.passage_within}' is not one of document, paragraph, section")
        if self.mode not in ("hybrid", "dense", "lexical"):
            raise ConfigError(f"mode '{self.mode}' is not one of hybrid, dense, lexical")
        if self.candidates < 1:
            raise ConfigError(f"candidates {self.candidates} must be >= 1")
        if not (math.isfinite(self.candidates_per_ktoken) and self.candidates_per_ktoken >= 0):
            raise ConfigError(f"candidates_per_ktoken {self.candidates_per_ktoken} must be >= 0 "
                              "(0 keeps candidates at every budget)")
        if self.max_span_share is not None and not 0 < self.max_span_share <= 1:
            raise ConfigError(f"max_span_share {self.max_span_share} must be in (0, 1]")
        if self.max_span_tokens is not None and self.max_span_tokens < 1:
            raise ConfigError(f"max_span_tokens {self.max_span_tokens} must be >= 1 (None: no cap)")
        if self.order not in ("document", "relevance", "edges"):
            raise ConfigError(f"order '{self.order}' is not one of document, relevance, edges")
        if self.position_weight < 0:
            raise ConfigError(f"position_weight {self.position_weight} must be >= 0 (0 turns positional ranking off)")
        if not (math.isfinite(self.hint_weight) and self.hint_weight >= 0):
            raise ConfigError(f"hint_weight {self.hint_weight} must be >= 0 (0 turns hint ranking off)")
        if not (math.isfinite(self.header_weight) and self.header_weight >= 0):
            raise ConfigError(f"header_weight {self.header_weight} must be >= 0 (0 ranks sentences alone)")
        if not (math.isfinite(self.second_hop_weight) and self.second_hop_weight >= 0):
            raise ConfigError(f"second_hop_weight {self.second_hop_weight} must be >= 0 (0 turns the second hop off)")
        if self.second_hop_words < 1:
            raise ConfigError(f"second_hop_words {self.second_hop_words} must be >= 1")
        unknown = set(self.second_hop_searches) - {"dense", "lexical"}
        if unknown or not self.second_hop_searches:
            raise ConfigError(f"second_hop_searches {self.second_hop_searches!r} must name dense, lexical or both")
        if isinstance(self.second_hop_min_budget, bool) or not isinstance(self.second_hop_min_budget, int) \
                or self.second_hop_min_budget < 0:
            raise ConfigError(f"second_hop_min_budget {self.second_hop_min_budget!r} must be a whole number of "
                              "tokens >= 0 (0: the hop runs at every budget)")

    def second_hop_runs(self, budget: int | None) -> bool:
        """Whether a search that fills ``budget`` tokens takes a second hop."""
        if self.second_hop_weight <= 0:
            return False
        if self.second_hop_min_budget == 0:
            return True
        return budget is not None and budget >= self.second_hop_min_budget

    def candidates_for(self, budget: int | None) -> int:
        """Hits taken from each ranking for a search that fills ``budget`` tokens
        (``None``: no budget known, ``candidates``)."""
        if budget is None or budget <= 0:
            return self.candidates
        return max(self.candidates, math.ceil(budget / 1024 * self.candidates_per_ktoken))

    def span_cap(self, budget: int, hints: QueryHints | None = None) -> int | None:
        """Most tokens one span may take at this budget for a question with these
        ``hints`` (none when it asks for a whole unit)."""
        if hints is not None and hints.asks_for_unit:
            return None
        caps = [] if self.max_span_share is None else [max(1, int(budget * self.max_span_share))]
        if self.max_span_tokens is not None:
            caps.append(self.max_span_tokens)
        return max(caps) if caps else None


@dataclass(frozen=True)
class RetrievalOptions:
    """What one retrieval asks for: the one place its options are declared.

    ``Retriever.retrieve``, ``HybridContext.retrieve``, the framework
    integrations and the servers take these, as one value (``options=``) or
    as keyword arguments checked against these fields (:meth:`merge`), so a
    new option is added here once. :class:`RetrievalConfig` is the other
    half: how an index is searched, fixed when it is opened.

    Attributes:
        budget: tokens the rendered context may take (in ``tokenizer``).
        tokenizer: ``cl100k_base``, ``o200k_base`` or a tokenizer.json path.
        doc_ids: restrict the search to these documents (``None``: all).
        mode: override the configured search mode.
        order: override the configured layout.
        reserve: tokens kept free inside the budget (prompt, answer).
        query_id: echoed in the result (batch queries).
    """

    budget: int
    tokenizer: str = "cl100k_base"
    doc_ids: Sequence[str] | None = None
    mode: SearchMode | None = None
    order: PackOrder | None = None
    reserve: int = 0
    query_id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.budget, bool) or not isinstance(self.budget, int):
            raise ConfigError(f"budget {self.budget!r} must be a whole number of tokens")
        if isinstance(self.reserve, bool) or not isinstance(self.reserve, int):
            raise ConfigError(f"reserve {self.reserve!r} must be a whole number of tokens")
        if self.mode is not None and self.mode not in get_args(SearchMode):
            raise ConfigError(f"mode '{self.mode}' is not one of {', '.join(get_args(SearchMode))}")
        if self.order is not None and self.order not in get_args(PackOrder):
            raise ConfigError(f"order '{self.order}' is not one of {', '.join(get_args(PackOrder))}")
        if isinstance(self.doc_ids, str):  # one id is a sequence of letters: never what was meant
            raise ConfigError(f"doc_ids must be a list of document ids, not the string {self.doc_ids!r}")
        if self.doc_ids is not None and not isinstance(self.doc_ids, tuple):
            object.__setattr__(self, "doc_ids", tuple(self.doc_ids))

    @classmethod
    def merge(cls, options: RetrievalOptions | None = None, budget: int | None = None, /,
              **overrides: Any) -> RetrievalOptions:
        """``options`` (or the defaults) with ``budget`` (a positional one) and ``overrides`` applied.

        Raises:
            ConfigError: an unknown option (naming the nearest known one), a
                budget given twice or not at all, or a value out of range.
        """
        from hybridctx.config.settings import reject_unknown_keys

        reject_unknown_keys(overrides, cls, "retrieval option")
        if budget is not None:
            if "budget" in overrides:
                raise ConfigError("the budget is given twice (positionally and as budget=); give it once")
            overrides["budget"] = budget
        if options is not None:
            return replace(options, **overrides) if overrides else options
        if "budget" not in overrides:
            raise ConfigError("a retrieval needs a token budget: retrieve(query, 1000) or budget=1000")
        return cls(**overrides)


class Retriever:
    """Searches a landmark store and packs what it finds.

    Args:
        store: a :class:`~hybridctx.indexers.LandmarkStore` (or anything with its
            search and table methods).
        encoder: the encoder the store was built with (queries only).
        config: retrieval settings.
    """

    def __init__(self, store: Any, encoder: Any, config: RetrievalConfig | None = None) -> None:
        self.store = store
        self.encoder = encoder
        self.config = config or RetrievalConfig()
        self._documents = DocumentCache(store)
        self._structures: dict[str, Any] = {}
        self._structures_generation: Any = None
        self._store_docs: tuple[Any, int] | None = None  # (store generation, documents in it)

    @property
    def documents(self) -> DocumentCache:
        """Texts and sentence tables of the store's documents, cached across queries."""
        return self._documents

    def candidates(
        self, query: str, doc_ids: Sequence[str] | None = None, *, mode: SearchMode | None = None,
        timings: dict[str, float] | None = None, budget: int | None = None,
        signals: dict[str, Any] | None = None,
    ) -> list[SpanCandidate]:
        """Scored span candidates for a query, best first.

        Args:
            query: the question.
            doc_ids: restrict the search to these documents.
            mode: override the configured search mode.
            timings: filled with milliseconds per stage.
            budget: tokens the candidates will be packed into; sets how many
                hits each search takes (:meth:`RetrievalConfig.candidates_for`).
            signals: filled with the rankings behind the candidates, for
                :mod:`hybridctx.retrieval.confidence`: ``dense`` and ``lexical`` (row ids,
                best first; empty when that search did not run) and ``fused``
                (the fused scores, best first).
        """
        self._documents.refresh()
        cfg = self.config if mode is None else replace(self.config, mode=mode)
        timings = {} if timings is None else timings
        k = cfg.candidates_for(budget)
        rankings, weights = [], []
        dense_rows = lexical_rows = np.zeros(0, np.int64)
        if cfg.mode in ("hybrid", "dense") and not (cfg.mode == "hybrid" and self._unreadable(query, cfg)):
            query_vectors: list[np.ndarray] = []
            dense_rows = self._dense_rows(query, doc_ids, k, timings, query_vectors)
            rankings.append(dense_rows)
            weights.append(cfg.dense_weight)
        position = detect_position(query) if cfg.position_weight > 0 else None
        if cfg.mode in ("hybrid", "lexical"):
            t = time.perf_counter()
            lexical_rows = self._lexical_rows(query, doc_ids, cfg, k)
            timings["lexical_search"] = _ms(t)
            rankings.append(lexical_rows)
            weights.append(cfg.lexical_weight)
            # Beside the dense ranking only: with BM25 alone (an unreadable query, or lexical mode)
            # it cost Chinese sets at 512 tokens at every weight tried (docs/benchmarks.md). Not for a
            # question that asks for a position: its content words ("the first topic we discussed")
            # match every passage about topics, and one more content ranking outweighs the position's.
            if cfg.passage_weight > 0 and len(dense_rows) and position is None and self._passage_field():
                t = time.perf_counter()
                rows = self._passage_rows(query, doc_ids, cfg, k)
                timings["passage_search"] = _ms(t)
                if len(rows):
                    rankings.append(rows)
                    weights.append(cfg.passage_weight)
        if position is not None:
            t = time.perf_counter()
            rows = self._positional_rows(position, doc_ids, k)
            timings["position"] = _ms(t)
            if len(rows):
                logger.debug("positional question (%r): favouring the %s of each document", position.phrase, position.anchor)
                rankings.append(rows)
                weights.append(cfg.position_weight)
        if cfg.hint_weight > 0 and rankings:
            t = time.perf_counter()
            rows = self._hinted_rows(hints_for(query), rankings, k)
            timings["hints"] = _ms(t)
            if len(rows):
                rankings.append(rows)
                weights.append(cfg.hint_weight)
        if cfg.fusion == "convex" and len(dense_rows) and len(lexical_rows):
            t = time.perf_counter()
            rankings[:2] = [self._convex_rows(query, query_vectors[0], dense_rows, lexical_rows, cfg)]
            weights[:2] = [cfg.dense_weight + cfg.lexical_weight]
            timings["convex"] = _ms(t)
        t = time.perf_counter()
        rows, scores = reciprocal_rank_fusion(rankings, weights, k=cfg.rrf_k)
        if cfg.second_hop_runs(budget) and len(rows) and (not cfg.second_hop_across_documents
                                                          or self._spans_documents(doc_ids)):
            hops = self._second_hop(query, int(rows[0]), doc_ids, cfg, k,
                                    dense=len(dense_rows) > 0, lexical=cfg.mode in ("hybrid", "lexical"))
            timings["second_hop"] = _ms(t)
            if hops:
                rankings += hops
                weights += [cfg.second_hop_weight] * len(hops)
                rows, scores = reciprocal_rank_fusion(rankings, weights, k=cfg.rrf_k)
            t = time.perf_counter()
        if signals is not None:
            signals.update(dense=dense_rows, lexical=lexical_rows, fused=scores)
        if len(rows) == 0:
            timings["spans"] = _ms(t)
            return []
        located = self._locate(rows)
        hits = list(zip(located[0], located[1].tolist(), scores.tolist()))
        spans = grow_spans(hits, self._documents.sentences, cfg.growth)
        timings["spans"] = _ms(t)
        return spans

    def retrieve(self, query: str, budget: int | None = None, /, *, options: RetrievalOptions | None = None,
                 **overrides: Any) -> PackedContext:
        """Retrieve and pack spans for ``query`` into ``budget`` tokens.

        Args:
            query: the question.
            budget: tokens the rendered context may take, positionally or as
                ``budget=`` (a :class:`RetrievalOptions` field like the rest).
            options: the call's options as one value.
            overrides: :class:`RetrievalOptions` fields by name (``tokenizer``,
                ``doc_ids``, ``mode``, ``order``, ``reserve``, ``query_id``),
                replacing those of ``options``.

        Raises:
            ConfigError: an unknown option or a missing budget (:meth:`RetrievalOptions.merge`).
            BudgetError: a budget nothing fits in.
        """
        opts = RetrievalOptions.merge(options, budget, **overrides)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        counter = get_counter(opts.tokenizer)
        # The hits are packed into what the reserve leaves of the budget.
        found = self.candidates(query, opts.doc_ids, mode=opts.mode, timings=timings,
                                budget=opts.budget - opts.reserve)
        t = time.perf_counter()
        packed = self.pack(found, opts.budget, counter, query=query, order=opts.order, reserve=opts.reserve,
                           mode=opts.mode)
        timings["pack"] = _ms(t)
        timings["total"] = _ms(started)
        logger.debug("retrieved %d spans, %d/%d tokens for %r", len(packed.spans), packed.tokens, opts.budget, query)
        return replace(packed, timings_ms=timings, query_id=opts.query_id)

    def pack(self, found: Sequence[SpanCandidate], budget: int, counter: TokenCounter, *, query: str = "",
             order: PackOrder | None = None, reserve: int = 0, mode: SearchMode | None = None) -> PackedContext:
        """Pack candidates of :meth:`candidates` (searched in ``mode``, default the configured
        one) as this retriever's settings say (layout, markers and header markers, span cap)
        into ``budget - reserve`` tokens."""
        return pack(
            found, self._documents.text, budget, counter, query=query, order=order or self.config.order,
            reserve=reserve, markers=self.config.markers, max_span_tokens=self._span_cap(query, budget - reserve, mode),
            headers=self.marker_headers if self.config.markers and self.config.header_markers else None,
        )

    def _span_cap(self, query: str, budget: int, mode: SearchMode | None) -> int | None:
        """The span cap for ``query``: none unless the dense ranking ran. A cap trims around
        a span's best hit, and a hit of sentence BM25 alone (Chinese queries, which MiniLM
        cannot read, or lexical mode) too often lies a few sentences from the evidence:
        capped, the Chinese sets lost up to 8 of 80 questions a cell (docs/benchmarks.md)."""
        cfg = self.config
        if (mode or cfg.mode) == "lexical" or ((mode or cfg.mode) == "hybrid" and self._unreadable(query, cfg)):
            return None
        return cfg.span_cap(budget, hints_for(query))

    def marker_headers(self, doc_id: str, offsets: Sequence[int]) -> list[str]:
        """The short header path a marker shows for a span starting at each offset of
        ``doc_id`` (``''`` where the document has no structure, or nothing above it)."""
        structure = self._structure(doc_id)
        if structure is None:
            return [""] * len(offsets)
        return [short_header(path, doc_id) for path in structure.paths(offsets, speaker=False)]

    def _contextual_lexical(
        self, query: str, doc_ids: Sequence[str] | None, cfg: RetrievalConfig, k: int,
    ) -> np.ndarray:
        """Rows ranked by BM25 of the passage around each sentence (same paragraph only)."""
        lexical = self.store.lexical()
        scores = lexical.scores(query)
        groups = self._paragraph_groups(lexical)
        back, forward = cfg.lexical_context
        smoothed = scores.copy()
        n = len(scores)
        for offset in range(-forward, back + 1):
            # A landmark ends its passage: sentences before it count as "back".
            if offset == 0:
                continue
            shifted = np.zeros(n, dtype=np.float32)
            same = np.zeros(n, dtype=bool)
            if offset > 0:
                shifted[offset:] = scores[:-offset]
                same[offset:] = groups[offset:] == groups[:-offset]
            else:
                shifted[:offset] = scores[-offset:]
                same[:offset] = groups[:offset] == groups[-offset:]
            smoothed += cfg.lexical_neighbour_weight * np.where(same, shifted, 0.0).astype(np.float32)
        if cfg.header_weight > 0 and len(lexical) <= _HEADER_MAX_LANDMARKS:
            smoothed += cfg.header_weight * self._header_lexical(lexical).scores(query)
        return self._best_rows(smoothed, lexical.rows, doc_ids, k)

    def _best_rows(self, scores: np.ndarray, rows: np.ndarray, doc_ids: Sequence[str] | None, k: int) -> np.ndarray:
        """The ``k`` rows of positive score within ``doc_ids``, best first (ties by row)."""
        if doc_ids is not None:
            allowed = self.store.rows_for_documents(doc_ids)
            pos = np.searchsorted(rows, allowed)
            pos = pos[(pos < len(rows))]
            pos = pos[rows[pos] == allowed[: len(pos)]] if len(pos) == len(allowed) else np.intersect1d(
                pos, np.flatnonzero(np.isin(rows, allowed)))
        else:
            pos = np.arange(len(rows))
        pos = pos[scores[pos] > 0]
        if len(pos) > k:
            pos = pos[np.argpartition(-scores[pos], k - 1)[:k]]
        pos = pos[np.lexsort((rows[pos], -scores[pos]))]
        best: np.ndarray = rows[pos]
        return best

    def _dense_rows(self, query: str, doc_ids: Sequence[str] | None, k: int,
                    timings: dict[str, float] | None = None,
                    query_vectors: list[np.ndarray] | None = None) -> np.ndarray:
        """Rows of the dense search for ``query``, best first (its vector is appended to
        ``query_vectors`` when given, so convex fusion does not encode it again)."""
        t = time.perf_counter()
        qvec = self.encoder.encode_queries([query])
        if query_vectors is not None:
            query_vectors.append(qvec)
        if timings is not None:
            timings["encode_query"] = _ms(t)
        t = time.perf_counter()
        scores, rows = self.store.search_dense(qvec, k, doc_ids)
        if timings is not None:
            timings["dense_search"] = _ms(t)
        # A non-positive similarity is no evidence (documents the encoder could not
        # read have zero vectors): such hits must not take a rank in the fusion.
        found: np.ndarray = rows[0][scores[0] > 0]
        return found

    def _lexical_rows(self, query: str, doc_ids: Sequence[str] | None, cfg: RetrievalConfig, k: int) -> np.ndarray:
        """Rows of the BM25 search for ``query`` (bare sentences, or with context and header field), best first."""
        if cfg.lexical_context == (0, 0) and not self._header_field(cfg):
            _, rows = self.store.search_lexical(query, k, doc_ids)
            return np.asarray(rows)
        return self._contextual_lexical(query, doc_ids, cfg, k)

    def _convex_rows(self, query: str, qvec: np.ndarray, dense_rows: np.ndarray, lexical_rows: np.ndarray,
                     cfg: RetrievalConfig) -> np.ndarray:
        """The union of both hit lists ranked by a convex sum of each side's min-max normalised
        score; each hit's score on the side that did not return it is computed exactly."""
        union = np.unique(np.concatenate([dense_rows, lexical_rows]).astype(np.int64))
        dense = self.store.vectors_for_rows(union) @ np.asarray(qvec, dtype=np.float32).reshape(-1)
        lexical = self.store.lexical()
        every = lexical.scores(query).astype(np.float64)
        if self._header_field(cfg):
            every = every + cfg.header_weight * self._header_lexical(lexical).scores(query)
        pos = np.clip(np.searchsorted(lexical.rows, union), 0, max(len(lexical.rows) - 1, 0))
        lex = np.where(lexical.rows[pos] == union, every[pos], 0.0) if len(lexical.rows) else np.zeros(len(union))

        def unit(x: np.ndarray) -> np.ndarray:
            span = float(x.max() - x.min())
            return (x - x.min()) / span if span > 0 else np.zeros(len(x))

        share = cfg.convex_dense_share
        combined = share * unit(np.asarray(dense, np.float64)) + (1 - share) * unit(lex)
        ranked: np.ndarray = union[np.lexsort((union, -combined))]
        return ranked

    def _locate(self, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        """``(doc_ids, ordinals)`` of landmark ``rows``: from the cached blocks, else from the store."""
        located = self._documents.locate(rows)
        if located is None:
            marks = self.store.landmarks_for_rows(rows)
            located = ([str(d) for d in marks.doc_ids], marks.ordinals)
        return located

    def _spans_documents(self, doc_ids: Sequence[str] | None) -> bool:
        """Whether a search over ``doc_ids`` (``None``: the whole store) spans more than one document."""
        if doc_ids is not None:
            return len(set(doc_ids)) > 1
        generation = getattr(self.store, "generation", None)
        if self._store_docs is None or self._store_docs[0] != generation or generation is None:
            self._store_docs = (generation, len(self.store.doc_ids()))
        return self._store_docs[1] > 1

    def _second_hop(self, query: str, best_row: int, doc_ids: Sequence[str] | None, cfg: RetrievalConfig,
                    k: int, *, dense: bool, lexical: bool) -> list[np.ndarray]:
        """The second hop's rankings (:mod:`hybridctx.retrieval.second_hop`). The seed span is left in
        them: it ranks first there too (its words are the query); rankings without it pushed it
        out of small budgets (measured: docs/benchmarks.md#a-second-hop-for-multi-hop-questions-issue-134-session-8)."""
        doc_of, ordinal_of = self._locate(np.asarray([best_row], dtype=np.int64))
        start, end = seed_span(doc_of[0], int(ordinal_of[0]), self._documents.sentences, cfg.growth)
        hop = hop_query(query, self._documents.text(doc_of[0])[start:end], cfg.second_hop_words)
        out = []
        if dense and "dense" in cfg.second_hop_searches:
            out.append(self._dense_rows(hop, doc_ids, k))
        if lexical and "lexical" in cfg.second_hop_searches:
            out.append(self._lexical_rows(hop, doc_ids, cfg, k))
        return [rows.astype(np.int64, copy=False) for rows in out if len(rows)]

    def _hinted_rows(self, hints: QueryHints, rankings: list[np.ndarray], k: int) -> np.ndarray:
        """The hits of ``rankings`` (interleaved, best first) that lie under a date, speaker or
        section the question names; empty when it names none or none matches."""
        if not (hints.dates or hints.speakers or hints.sections):
            return np.zeros(0, dtype=np.int64)
        seen: dict[int, None] = {}
        for rank in range(max((len(r) for r in rankings), default=0)):
            for ranking in rankings:
                if rank < len(ranking):
                    seen.setdefault(int(ranking[rank]), None)
        rows = np.fromiter(seen, dtype=np.int64, count=len(seen))
        if not len(rows):
            return rows
        marks = self.store.landmarks_for_rows(rows)
        keep = np.zeros(len(rows), dtype=bool)
        for i in range(len(rows)):
            structure = self._structure(str(marks.doc_ids[i]))
            keep[i] = structure is not None and matches_hints(structure, int(marks.starts[i]), hints)
        return rows[keep][:k]

    def _passage_field(self) -> bool:
        """Whether the passage ranking can run (a store with tables, small enough to build it per process)."""
        return self._fits_per_process_index()

    def _fits_per_process_index(self) -> bool:
        """Whether an index built per process and not saved (the header field, the passages) may be built
        for this store: it has BM25 and tables, and at most 200,000 landmarks."""
        if not hasattr(self.store, "lexical") or not hasattr(self.store, "counts"):
            return False
        return bool(self.store.counts()["landmarks"] <= _HEADER_MAX_LANDMARKS)

    def _passage_rows(self, query: str, doc_ids: Sequence[str] | None, cfg: RetrievalConfig, k: int) -> np.ndarray:
        """Rows ranked by the BM25 of the passage of ``passage_sentences`` sentences each ends
        (:mod:`hybridctx.retrieval.passage_lexical`), best first."""
        lexical = self.store.lexical()
        key = (lexical, cfg.passage_sentences, cfg.passage_tokens, cfg.passage_within)
        cached = getattr(self, "_passages", None)
        if cached is None or cached[0][0] is not lexical or cached[0][1:] != key[1:]:
            from hybridctx.retrieval.passage_lexical import passage_index

            cached = self._passages = (key, passage_index(self.store, self._documents, cfg.passage_sentences,
                                                          lexical.settings, cfg.passage_tokens,
                                                          within=cfg.passage_within))
        index = cached[1]
        return self._best_rows(index.scores(query), index.rows, doc_ids, k)

    def _header_field(self, cfg: RetrievalConfig) -> bool:
        """Whether BM25 adds the header-path field (on, and the corpus small enough to build it per process)."""
        return cfg.header_weight > 0 and self._fits_per_process_index()

    def _header_lexical(self, lexical: Any) -> Any:
        """BM25 over each landmark's header path, aligned with the sentence index's rows
        (built on first use, again when the store changes)."""
        cached = getattr(self, "_headers", None)
        if cached is not None and cached[0] is lexical:
            return cached[1]
        from hybridctx.indexers.lexical.bm25 import LexicalIndex

        texts: dict[int, str] = {}
        for doc_id in self.store.doc_ids():
            structure = self._structure(doc_id)
            if structure is None:
                break  # a store without structure: the field stays empty
            marks = self.store.landmarks_of(doc_id)
            # Without the speaker: a turn's own text names its speaker already, and a name
            # in the question must not lift every turn of that speaker (locomo lost 1-2
            # questions a budget to it).
            for row, path in zip(marks.rows.tolist(), structure.paths(marks.starts.tolist(), speaker=False)):
                texts[int(row)] = " ".join(path)
        rows = lexical.rows.tolist()
        index = LexicalIndex.from_sentences(((r, texts.get(r, "")) for r in rows), lexical.settings)
        self._headers = (lexical, index)
        return index

    def _paragraph_groups(self, lexical: Any) -> np.ndarray:
        """``(n,) int64`` one code per (document, paragraph), aligned with the BM25 rows."""
        key = len(lexical)
        cached = getattr(self, "_groups", None)
        if cached is not None and cached[0] == key and cached[1] is lexical:
            kept: np.ndarray = cached[2]
            return kept
        marks = self.store.landmarks_for_rows(lexical.rows)
        _, doc_codes = np.unique(marks.doc_ids, return_inverse=True)
        groups: np.ndarray = doc_codes.astype(np.int64) * (int(marks.paragraphs.max(initial=0)) + 1) + marks.paragraphs
        self._groups = (key, lexical, groups)
        return groups

    def _positional_rows(self, position: PositionHint, doc_ids: Sequence[str] | None, k: int) -> np.ndarray:
        """Landmark rows by distance from the ``start`` or ``end`` of each document in scope, or
        from the start of the unit an ordinal names when the document's structure has it,
        interleaved across documents (every document's first sentence, then every second, ...)."""
        scope = list(doc_ids) if doc_ids is not None else self.store.doc_ids()
        if len(scope) > _POSITIONAL_MAX_DOCS:
            logger.debug("positional question over %d documents: no positional ranking", len(scope))
            return np.zeros(0, dtype=np.int64)
        keyed: list[tuple[int, int, int]] = []
        for d, doc_id in enumerate(scope):
            marks = self.store.landmarks_of(doc_id)
            order = np.argsort(marks.ordinals, kind="stable")
            unit_start = self._unit_start(doc_id, position, marks)
            if unit_start is not None:
                # The named unit first, read forwards from its start; then what lies before it.
                starts = marks.starts[order]
                after = starts >= unit_start
                order = np.concatenate([order[after], order[~after][::-1]])
            elif position.anchor == "end":
                order = order[::-1]
            keyed.extend((rank, d, int(row)) for rank, row in enumerate(marks.rows[order[:k]]))
        keyed.sort()
        return np.asarray([row for _, _, row in keyed[:k]], dtype=np.int64)

    def _unit_start(self, doc_id: str, position: PositionHint, marks: Any) -> int | None:
        """Where the unit an ordinal names starts in ``doc_id`` ("the third section": the
        third top-level heading), or ``None`` when the document has no such units or too few."""
        if position.ordinal is None or position.unit is None:
            return None
        found = self._structure(doc_id)
        if found is None:
            return None
        starts = structural_units(found, position.unit)
        if not starts:
            return None
        index = position.ordinal - 1 if position.ordinal > 0 else len(starts) + position.ordinal
        return starts[index] if 0 <= index < len(starts) else None

    def _structure(self, doc_id: str) -> Any:
        """The document's structure (cached until the store changes), or ``None`` for a store without it."""
        read = getattr(self.store, "structure", None)
        if read is None:
            return None
        generation = getattr(self.store, "generation", None)
        if generation != self._structures_generation:
            self._structures, self._structures_generation = {}, generation
        if doc_id not in self._structures:
            self._structures[doc_id] = read(doc_id)
        return self._structures[doc_id]

    def _unreadable(self, query: str, cfg: RetrievalConfig) -> bool:
        readable = getattr(self.encoder, "readable_ratio", None)
        if readable is None:
            return False
        return bool((1.0 - readable(query)) > cfg.unreadable_query_ratio)


_MARKER_LEVELS = 2  # the innermost levels of a header path a marker shows
_MARKER_CHARS = 60  # about 12 tokens of English


def short_header(path: Sequence[str], doc_id: str = "") -> str:
    """A header path as a marker shows it: its last two levels (one when two are longer than
    60 characters), a level equal to ``doc_id`` left out, cut at a word to 60 characters."""
    levels = [" ".join(p.split()) for p in path]
    levels = [p for p in levels if p and p != doc_id][-_MARKER_LEVELS:]
    text = " › ".join(levels)
    if len(text) > _MARKER_CHARS and len(levels) > 1:
        text = levels[-1]
    if len(text) > _MARKER_CHARS:
        cut = text[: _MARKER_CHARS - 1]
        text = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip() + "…"
    return text


_HEADER_MAX_LANDMARKS = 200_000  # the header field's BM25 is built per process, not saved with the index
_POSITIONAL_MAX_DOCS = 64  # beyond this scope a positional question searches by content only


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
