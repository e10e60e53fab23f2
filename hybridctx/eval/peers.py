"""The methods users would pick instead of hybridctx, behind one small protocol.

Why: a retrieval number means little without the alternatives measured the
same way. Each peer here is what a user gets from the usual tools, with the
same encoder as hybridctx (all-MiniLM-L6-v2 unless told otherwise), and every
one packs to the same exact budget by the same greedy rule
(:class:`~hybridctx.eval.units.GreedyPacker`).

- :class:`LlamaIndexChunks`: LlamaIndex ``SentenceSplitter`` chunks, dense top-k.
- :class:`LlamaIndexSentenceWindow`: ``SentenceWindowNodeParser`` sentences are
  ranked, and the ±window sentences ``MetadataReplacementPostProcessor`` would
  put in their place are packed.
- :class:`BM25Chunks`: bm25s over the same ``SentenceSplitter`` chunks (English
  words lowercased, Chinese words by jieba).
- :class:`Truncation`: the first tokens of the documents in scope.

Dense peers rank with numpy by default (cosine of L2-normalised vectors, the
ranking LlamaIndex's ``SimpleVectorStore`` computes, without its per-node
Python loop); ``backend="llamaindex"`` runs the same vectors through a real
``VectorStoreIndex`` with a document metadata filter, which is exact but slow
past a few thousand nodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from hybridctx.datatypes import content_hash
from hybridctx.errors import ConfigError, InputError
from hybridctx.eval.llama_embedding import embedding_dim, encode_texts, load_encoder, make_llama_embedding
from hybridctx.eval.scoring import PackedRange
from hybridctx.eval.units import GreedyPacker, chunk_ranges, lexical_tokens, sentence_ranges, window_ranges
from hybridctx.packing.tokens import TokenCounter, count_many, get_counter

__all__ = [
    "BM25Chunks",
    "LlamaIndexChunks",
    "LlamaIndexSentenceWindow",
    "RetrievalMethod",
    "Truncation",
    "default_peers",
]

DEFAULT_CHUNK_OVERLAP = 20  # LlamaIndex's Settings.chunk_overlap and the overlap in its examples
Backend = Literal["numpy", "llamaindex"]
# LlamaIndex's vector stores overwrite a metadata key named "doc_id" with the node's
# ref_doc_id, so the document is filtered on under another name.
_DOC_KEY = "source_doc_id"
Ranges = list[tuple[int, int]]


@runtime_checkable
class RetrievalMethod(Protocol):
    """A retrieval method as the harness sees it."""

    name: str

    def prepare(self, docs: Mapping[str, str]) -> None:
        """Index ``doc_id -> text``; a later call replaces the corpus."""

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list[PackedRange]:
        """Char ranges into the docs in scope (all when ``doc_ids`` is ``None``), at most ``budget`` tokens."""


@dataclass(frozen=True, eq=False)
class _DocUnits:
    """The retrieval units of one document: what is embedded and what is packed."""

    embed: tuple[tuple[int, int], ...]
    pack: tuple[tuple[int, int], ...]
    vectors: np.ndarray | None  # (n, dim) float32, L2-normalised; None for lexical units


class _UnitMethod:
    """Corpus bookkeeping shared by the unit-based peers: per-doc units cached by content."""

    name = "units"

    def __init__(self, tokenizer: str = "cl100k_base", show_progress: bool | None = None) -> None:
        self.counter = get_counter(tokenizer)
        self.show_progress = show_progress
        self.docs: Mapping[str, str] = {}
        self._cache: dict[tuple[str, str], _DocUnits] = {}
        self._slices: dict[str, tuple[int, int]] = {}  # doc -> its rows [lo, hi)
        self._unit_doc: list[str] = []  # row -> doc
        self._pack = np.zeros((0, 2), dtype=np.int64)  # row -> packed char range
        self._tokens = np.zeros(0, dtype=np.int64)  # row -> tokens of the packed range

    def _units(self, doc_id: str, text: str) -> tuple[Ranges, Ranges]:
        """``(embedded ranges, packed ranges)`` of one document, one pair per unit."""
        raise NotImplementedError

    def _vectors(self, texts: list[str]) -> np.ndarray | None:
        return None

    def _after_prepare(self, keys: Mapping[str, tuple[str, str]]) -> None:
        pass

    def prepare(self, docs: Mapping[str, str]) -> None:
        """Cut, encode and index ``docs``; documents seen before (same text) are reused."""
        keys = {doc_id: (doc_id, content_hash(text)) for doc_id, text in docs.items()}
        wanted = set(keys.values())
        self._cache = {k: v for k, v in self._cache.items() if k in wanted}  # one corpus in memory
        todo = [d for d in docs if keys[d] not in self._cache]
        parsed = {d: self._units(d, docs[d]) for d in todo}
        vectors = self._vectors([docs[d][s:e] for d in todo for s, e in parsed[d][0]])
        row = 0
        for d in todo:
            embed, pack = parsed[d]
            block = None if vectors is None else vectors[row : row + len(embed)]
            row += len(embed)
            self._cache[keys[d]] = _DocUnits(tuple(embed), tuple(pack), block)
        self.docs = dict(docs)
        self._slices, self._unit_doc, packs = {}, [], []
        for d in docs:
            units = self._cache[keys[d]]
            self._slices[d] = (len(packs), len(packs) + len(units.pack))
            self._unit_doc.extend([d] * len(units.pack))
            packs.extend(units.pack)
        self._pack = np.asarray(packs, dtype=np.int64).reshape(-1, 2)
        texts = [docs[d][s:e] for d, (s, e) in zip(self._unit_doc, packs)]
        self._tokens = np.asarray(count_many(self.counter, texts), dtype=np.int64)
        self._after_prepare(keys)

    def _rows(self, doc_ids: Sequence[str] | None) -> np.ndarray:
        if doc_ids is None:
            return np.arange(len(self._unit_doc))
        missing = [d for d in doc_ids if d not in self._slices]
        if missing:
            raise InputError(f"{self.name}: documents {missing[:3]} were not given to prepare(); prepare them")
        return np.concatenate([np.arange(*self._slices[d]) for d in doc_ids] or [np.zeros(0, dtype=np.int64)])

    def _pack_rows(self, ranked: Iterable[int], budget: int) -> list[PackedRange]:
        packer = GreedyPacker(self.docs, budget, self.counter)
        for r in ranked:
            if packer.remaining <= 0:
                break
            start, end = self._pack[r]
            packer.offer(self._unit_doc[r], int(start), int(end), int(self._tokens[r]))
        return packer.ranges()


class _DenseMethod(_UnitMethod):
    """Dense ranking of units embedded by a sentence-transformers encoder."""

    def __init__(
        self,
        encoder: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        backend: Backend = "numpy",
        tokenizer: str = "cl100k_base",
        show_progress: bool | None = None,
    ) -> None:
        super().__init__(tokenizer, show_progress)
        if backend not in ("numpy", "llamaindex"):
            raise ConfigError(f"backend {backend!r} is neither 'numpy' nor 'llamaindex'")
        _require_llama_index()
        self.model = load_encoder(encoder, device)
        self.backend = backend
        self._matrix = np.zeros((0, embedding_dim(self.model)), dtype=np.float32)  # row -> vector
        self._index: Any = None

    def _vectors(self, texts: list[str]) -> np.ndarray:
        return encode_texts(self.model, texts, desc=f"{self.name}: encoding", show_progress=self.show_progress)

    def _after_prepare(self, keys: Mapping[str, tuple[str, str]]) -> None:
        blocks = [self._cache[keys[d]].vectors for d in self.docs]
        self._matrix = np.concatenate([b for b in blocks if b is not None] + [self._matrix[:0]])
        self._index = self._llama_index(keys) if self.backend == "llamaindex" else None

    def _llama_index(self, keys: Mapping[str, tuple[str, str]]) -> Any:
        from hybridctx.eval.requires import eval_import

        VectorStoreIndex = eval_import("llama_index.core", "the LlamaIndex peers").VectorStoreIndex
        TextNode = eval_import("llama_index.core.schema", "the LlamaIndex peers").TextNode

        hidden = [_DOC_KEY, "row"]
        nodes = []
        for d in self.docs:
            lo = self._slices[d][0]
            for i, (s, e) in enumerate(self._cache[keys[d]].embed):
                nodes.append(TextNode(
                    id_=f"{d}#{i}", text=self.docs[d][s:e], embedding=self._matrix[lo + i].tolist(),
                    metadata={_DOC_KEY: d, "row": lo + i},
                    excluded_embed_metadata_keys=hidden, excluded_llm_metadata_keys=hidden,
                ))
        # the vectors are set, so the index embeds nothing; the embed model serves queries
        return VectorStoreIndex(nodes, embed_model=make_llama_embedding(self.model), show_progress=False)

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list[PackedRange]:
        rows = self._rows(doc_ids)
        if not len(rows):
            return []
        if self._index is not None:
            return self._pack_rows(self._llama_ranking(query, doc_ids, len(rows)), budget)
        q = self.model.encode([query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        scores = self._matrix[rows] @ q[0].astype(np.float32)
        return self._pack_rows(rows[np.argsort(-scores, kind="stable")], budget)

    def _llama_ranking(self, query: str, doc_ids: Sequence[str] | None, available: int) -> list[int]:
        from hybridctx.eval.requires import eval_import

        stores = eval_import("llama_index.core.vector_stores", "the LlamaIndex peers")
        FilterOperator, MetadataFilter, MetadataFilters = stores.FilterOperator, stores.MetadataFilter, stores.MetadataFilters

        filters = None
        if doc_ids is not None:
            scope = MetadataFilter(key=_DOC_KEY, value=list(doc_ids), operator=FilterOperator.IN)
            filters = MetadataFilters(filters=[scope])
        # the whole ranking: the greedy rule may skip any number of units that do not fit
        hits = self._index.as_retriever(similarity_top_k=available, filters=filters).retrieve(query)
        return [int(h.node.metadata["row"]) for h in hits]


class LlamaIndexChunks(_DenseMethod):
    """LlamaIndex ``SentenceSplitter`` chunks, each embedded alone, dense top-k by cosine.

    Chunks longer than the encoder's window (256 word pieces for MiniLM) are
    truncated by the encoder, as with LlamaIndex's own Hugging Face embedding.

    Args:
        chunk_size: chunk size in LlamaIndex's tokenizer (cl100k_base), e.g. 256 or 512.
        chunk_overlap: 20, LlamaIndex's ``Settings.chunk_overlap``.
        encoder: sentence-transformers model path or id; ``None`` is the packaged MiniLM.
        device: encoder device.
        backend: ``"numpy"`` ranking, or a real ``VectorStoreIndex`` (``"llamaindex"``).
        tokenizer: the budget's tokenizer.
        show_progress: tqdm bars (``None``: on a terminal).
    """

    def __init__(self, chunk_size: int = 256, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP, **kwargs: Any) -> None:
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap
        self.name = f"llamaindex-chunks-{chunk_size}"
        super().__init__(**kwargs)

    def _units(self, doc_id: str, text: str) -> tuple[Ranges, Ranges]:
        ranges = chunk_ranges(doc_id, text, self.chunk_size, self.chunk_overlap)
        return ranges, ranges


class LlamaIndexSentenceWindow(_DenseMethod):
    """Sentence-window retrieval: rank single sentences, pack their ±``window`` neighbourhoods.

    Sentences come from ``SentenceWindowNodeParser`` (see
    :func:`~hybridctx.eval.units.sentence_ranges`); overlapping windows of a
    document merge when packed. Takes the keyword arguments of
    :class:`LlamaIndexChunks` after ``window``.
    """

    def __init__(self, window: int = 3, **kwargs: Any) -> None:
        self.window = window
        self.name = f"llamaindex-window-{window}"
        super().__init__(**kwargs)

    def _units(self, doc_id: str, text: str) -> tuple[Ranges, Ranges]:
        sentences = sentence_ranges(doc_id, text, self.window)
        return sentences, window_ranges(sentences, self.window)


class BM25Chunks(_UnitMethod):
    """bm25s over ``SentenceSplitter`` chunks; one index per search scope, built on first use.

    Args:
        chunk_size: chunk size in LlamaIndex's tokenizer.
        chunk_overlap: chunk overlap (LlamaIndex default 20).
        tokenizer: the budget's tokenizer.
        show_progress: tqdm bars (``None``: on a terminal).
    """

    def __init__(
        self,
        chunk_size: int = 256,
        chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
        *,
        tokenizer: str = "cl100k_base",
        show_progress: bool | None = None,
    ) -> None:
        super().__init__(tokenizer, show_progress)
        _require_llama_index()
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap
        self.name = f"bm25-chunks-{chunk_size}"
        self._words: list[list[str]] = []  # row -> BM25 terms
        self._indexes: dict[tuple[str, ...] | None, Any] = {}

    def _units(self, doc_id: str, text: str) -> tuple[Ranges, Ranges]:
        ranges = chunk_ranges(doc_id, text, self.chunk_size, self.chunk_overlap)
        return ranges, ranges

    def _after_prepare(self, keys: Mapping[str, tuple[str, str]]) -> None:
        from tqdm.auto import tqdm

        rows = tqdm(range(len(self._unit_doc)), desc=f"{self.name}: terms", unit="chunk",
                    disable=None if self.show_progress is None else not self.show_progress)
        self._words = [lexical_tokens(self.docs[self._unit_doc[r]][slice(*self._pack[r])]) for r in rows]
        self._indexes = {}

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list[PackedRange]:
        from hybridctx.eval.requires import eval_import

        bm25s = eval_import("bm25s", "the BM25 peer")

        rows = self._rows(doc_ids)
        if not len(rows):
            return []
        key = None if doc_ids is None else tuple(doc_ids)
        index = self._indexes.get(key)
        if index is None:
            # statistics of the scope searched: a user searching one document indexes that document
            index = bm25s.BM25()
            index.index([self._words[r] or [""] for r in rows], show_progress=False)  # bm25s needs a term
            if len(self._indexes) >= 512:
                self._indexes.clear()
            self._indexes[key] = index
        terms = lexical_tokens(query)
        scores = np.asarray(index.get_scores(terms)) if terms else np.zeros(len(rows))
        return self._pack_rows(rows[np.argsort(-scores, kind="stable")], budget)


class Truncation:
    """The first ``budget`` tokens of the documents in scope, in order.

    For a corpus-scope search (hotpotqa) this is the first documents of the
    corpus order, meaningless as retrieval but reported anyway.

    Args:
        tokenizer: the budget's tokenizer.
    """

    name = "truncation"

    def __init__(self, *, tokenizer: str = "cl100k_base") -> None:
        self.counter = get_counter(tokenizer)
        self.docs: Mapping[str, str] = {}
        self._tokens: dict[str, int] = {}

    def prepare(self, docs: Mapping[str, str]) -> None:
        self.docs = dict(docs)
        self._tokens = dict(zip(self.docs, count_many(self.counter, list(self.docs.values()))))

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list[PackedRange]:
        out: list[PackedRange] = []
        left = budget
        for doc_id in self.docs if doc_ids is None else doc_ids:
            text = self.docs[doc_id]
            if not text:
                continue
            if self._tokens[doc_id] <= left:
                out.append((doc_id, 0, len(text)))
                left -= self._tokens[doc_id]
                continue
            end = _prefix_chars(text, left, self.counter)
            if end:
                out.append((doc_id, 0, end))
            break
        return out


def _prefix_chars(text: str, budget: int, counter: TokenCounter) -> int:
    """The longest prefix length whose token count is at most ``budget`` (binary search)."""
    lo, hi = 0, min(len(text), max(16, budget * 8))
    while hi < len(text) and counter.count(text[:hi]) <= budget:
        lo, hi = hi, min(len(text), hi * 2)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _require_llama_index() -> None:
    from hybridctx.eval.requires import require_eval

    require_eval(("llama_index.core",), "the LlamaIndex peers")


def default_peers(
    encoder: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
    tokenizer: str = "cl100k_base",
    show_progress: bool | None = None,
) -> list[RetrievalMethod]:
    """The five peers of DESIGN.md, the dense ones sharing one encoder."""
    dense: dict[str, Any] = dict(encoder=encoder, device=device, tokenizer=tokenizer, show_progress=show_progress)
    return [
        LlamaIndexChunks(256, **dense),
        LlamaIndexChunks(512, **dense),
        LlamaIndexSentenceWindow(3, **dense),
        BM25Chunks(256, tokenizer=tokenizer, show_progress=show_progress),
        Truncation(tokenizer=tokenizer),
    ]
