"""LlamaIndex plug-in: a retriever, a budget postprocessor and a cost-routed query engine.

Why: a LlamaIndex user keeps their pipeline and gains what hybridctx owns.
``HybridCtxNodeRetriever`` returns chunk-free spans as ``TextNode``s whose
``start_char_idx``/``end_char_idx`` point into the source document;
``BudgetPostprocessor`` packs *any* retrieved nodes to an exact token budget in
document order (cutting an over-long node to whole sentences);
``RoutedQueryEngine`` chooses full context or retrieval per question by cost,
answers with a hybridctx LLM (an OpenAI-compatible server or the local
SmolLM2, no LlamaIndex LLM needed) and returns the route decision in the
response's metadata.

Needs the ``llamaindex`` extra; importing this module without
``llama-index-core`` raises ``MissingDependencyError``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from hybridctx.errors import MissingDependencyError

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.response.schema import Response
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.query_engine import CustomQueryEngine
    from llama_index.core.schema import (
        MetadataMode,
        NodeRelationship,
        NodeWithScore,
        QueryBundle,
        RelatedNodeInfo,
        TextNode,
    )
except ImportError as exc:
    if (exc.name or "llama_index").split(".")[0] not in ("llama_index", "pydantic"):
        raise  # installed but broken: the original error says more
    raise MissingDependencyError("llama-index-core", "llamaindex", "the LlamaIndex integration") from exc

from hybridctx.datatypes import PackedContext, Span
from hybridctx.integrations.index_thread import IndexThread
from hybridctx.packing.pieces import PackedPiece, Piece, pack_pieces
from hybridctx.retrieval.retriever import RetrievalOptions

__all__ = ["BudgetPostprocessor", "HybridCtxNodeRetriever", "RoutedQueryEngine", "span_nodes"]

logger = logging.getLogger(__name__)

# Metadata a span node carries; kept out of what LLMs and embedders read, so that
# a synthesizer sends exactly the text the budget was counted on.
_SPAN_METADATA = ("doc_id", "tokens", "marker", "trimmed", "header")


class HybridCtxNodeRetriever(BaseRetriever):
    """Chunk-free retrieval from a hybridctx index, as a LlamaIndex retriever.

    Each ``NodeWithScore`` holds one packed span as a ``TextNode``: its text is
    exactly ``document[start_char_idx:end_char_idx]``, its source relationship
    and ``metadata["doc_id"]`` name the document, and ``metadata`` also holds
    ``tokens``, ``marker`` and ``trimmed``, and ``header`` with
    ``RetrievalConfig(header_markers=True)`` (all hidden from LLM and embedding
    content). Nodes come in document order and together fit ``budget`` tokens,
    markers included.

    Built ``from_index``, the index gets a thread of its own, so the retriever
    works from any thread and ``aretrieve`` does not block the event loop; built
    with an index you opened, it is used in place, from that thread only.

    Args:
        hc: an opened ``HybridContext`` (or the ``IndexThread`` ``from_index`` makes).
        budget: tokens the spans may take, rendered with their markers.
        tokenizer: the tokenizer that counts them.
        doc_ids: search only these documents.
        reserve: tokens kept free inside ``budget``.
        search_mode: override the index's search mode (``hybrid``, ``dense``, ``lexical``).
        callback_manager: LlamaIndex callbacks.
    """

    def __init__(
        self,
        hc: Any,
        *,
        budget: int = 1000,
        tokenizer: str = "cl100k_base",
        doc_ids: Sequence[str] | None = None,
        reserve: int = 0,
        search_mode: Literal["hybrid", "dense", "lexical"] | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self.hc = hc
        self._index = IndexThread.adopt(hc)
        self.budget = budget
        self.tokenizer = tokenizer
        self.doc_ids = list(doc_ids) if doc_ids is not None else None
        self.reserve = reserve
        self.search_mode = search_mode

    @classmethod
    def from_index(cls, index_dir: str | Path, **options: Any) -> HybridCtxNodeRetriever:
        """Open the index at ``index_dir`` on a thread of its own; ``options`` as for the class."""
        return cls(IndexThread.open(index_dir), **options)

    def retrieve_packed(self, query: str) -> PackedContext:
        """The packed context behind the nodes, with its rendered text and timings."""
        return self._index.call(_retrieve, query, self._options())

    def _options(self) -> RetrievalOptions:
        return RetrievalOptions(budget=self.budget, tokenizer=self.tokenizer, doc_ids=self.doc_ids,
                                mode=self.search_mode, reserve=self.reserve)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return span_nodes(self.retrieve_packed(query_bundle.query_str))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        packed = await self._index.acall(_retrieve, query_bundle.query_str, self._options())
        return span_nodes(packed)


class BudgetPostprocessor(BaseNodePostprocessor):
    """Packs any retrieved nodes to an exact token budget, in document order.

    A node is placed in its document when it names one (``metadata["doc_id"]``,
    else its source node) and has ``start_char_idx`` (and an
    ``end_char_idx`` that agrees with its length); overlapping nodes of one
    document are merged, and nodes without offsets keep their input order.
    Selection is by score when every node has one, else by input order; an
    over-long node is cut to the whole sentences at its start that fit.
    Untouched nodes come back as they were; cut or merged ones as copies with
    the packed text, their offsets and the id ``<node id>:<start>-<end>``.

    The budget covers the node texts joined by a blank line (what LlamaIndex's
    synthesizers send), or with ``markers`` a ``[k] doc_id`` line before
    each. Metadata that a node shows to LLMs is not counted: hybridctx's own
    nodes hide theirs; for others set ``excluded_llm_metadata_keys``.

    Attributes:
        budget: tokens the node texts may take.
        tokenizer: the tokenizer that counts them.
        reserve: tokens kept free inside ``budget``.
        markers: count (and expect) a marker line before each node.
        allow_trim: cut an over-long node to whole sentences instead of dropping it.
    """

    budget: int = Field(gt=0)
    tokenizer: str = "cl100k_base"
    reserve: int = Field(default=0, ge=0)
    markers: bool = False
    allow_trim: bool = True

    @classmethod
    def class_name(cls) -> str:
        return "HybridCtxBudgetPostprocessor"

    def pack(self, nodes: Sequence[NodeWithScore]) -> tuple[list[NodeWithScore], str, int]:
        """Pack ``nodes``; returns the kept nodes, the rendered context and its true token count."""
        packed = pack_pieces([_piece(n) for n in nodes], self.budget, self.tokenizer, reserve=self.reserve,
                             markers=self.markers, allow_trim=self.allow_trim)
        if packed.dropped:
            logger.debug("budget postprocessor dropped %d of %d nodes to fit %d tokens",
                         len(packed.dropped), len(nodes), self.budget)
        return [_packed_node(p, nodes) for p in packed.pieces], packed.context, packed.tokens

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return self.pack(nodes)[0]


class RoutedQueryEngine(CustomQueryEngine):
    """Answers by cost-routed context: full documents or retrieved spans, then a hybridctx LLM.

    Each query runs :func:`hybridctx.routing.answering.answer_question`: route by the model
    profile's costs and the limits, gather the context, generate, and escalate
    once (Self-Route) when a retrieval answer says it cannot answer. The
    ``Response`` holds the answer, the context's spans as ``source_nodes``
    (as ``HybridCtxNodeRetriever`` makes them), and in ``metadata`` the
    ``mode`` used, the ``route`` decision (``mode``, ``reason``, ``budget``,
    ``estimates``...), ``escalated``/``escalation``, ``citations`` (markers the
    answer cites), ``tokens`` and ``timings_ms``.

    Threads as for ``HybridCtxNodeRetriever``: build it ``from_index`` to use it
    anywhere (the whole answer, generation included, then runs on the index's
    thread).

    Attributes:
        hc: an opened ``HybridContext`` (or the ``IndexThread`` ``from_index`` makes).
        llm: a hybridctx ``LLM`` (``load_llm("local")``, ``OpenAICompatibleLLM``...).
        profile: the model profile costs are estimated for.
        limits: a ``RouteLimits`` or a dict of its fields.
        budget: retrieval budget to weigh (default: the limits').
        doc_ids: restrict to these documents.
        max_tokens: the longest answer.
        profiles_file: a user TOML file of profiles.
    """

    hc: Any
    llm: Any
    profile: str = "smollm2-135m-cpu"
    limits: Any = None
    budget: int | None = None
    doc_ids: list[str] | None = None
    max_tokens: int = Field(default=256, gt=0)
    profiles_file: str | None = None
    _index: IndexThread = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._index = IndexThread.adopt(self.hc)

    @classmethod
    def from_index(cls, index_dir: str | Path, llm: Any, **fields: Any) -> RoutedQueryEngine:
        """Open the index at ``index_dir`` on a thread of its own; ``fields`` as for the class."""
        return cls(hc=IndexThread.open(index_dir), llm=llm, **fields)

    def custom_query(self, query_str: str) -> Response:
        """Route, gather context, answer; see the class docstring."""
        return _response(self._index.call(_answer, query_str, self.llm, self._options()))

    async def acustom_query(self, query_str: str) -> Response:
        return _response(await self._index.acall(_answer, query_str, self.llm, self._options()))

    def _options(self) -> dict[str, Any]:
        from hybridctx.routing.router import RouteLimits

        limits = self.limits
        if isinstance(limits, Mapping):
            limits = RouteLimits.from_mapping({"answer_tokens": self.max_tokens, **limits})
        return {"profile": self.profile, "limits": limits, "doc_ids": self.doc_ids, "budget": self.budget,
                "max_tokens": self.max_tokens, "profiles_file": self.profiles_file}


def _retrieve(hc: Any, query: str, options: RetrievalOptions) -> PackedContext:
    return hc.retrieve(query, options=options)


def _answer(hc: Any, query: str, llm: Any, options: Mapping[str, Any]) -> Any:
    from hybridctx.routing.answering import answer_question

    return answer_question(hc, query, llm, **options)


def _response(answer: Any) -> Response:
    """A LlamaIndex ``Response`` from a hybridctx ``Answer``."""
    report = answer.to_json()
    return Response(
        response=answer.text,
        source_nodes=span_nodes(answer.context),
        metadata={
            "mode": answer.mode,
            "route": answer.route,
            "escalated": answer.escalated,
            "escalation": answer.escalation,
            "citations": list(answer.citations),
            "tokens": report["tokens"],
            "estimated_usd": report["estimated_usd"],
            "timings_ms": report["timings_ms"],
        },
    )


def span_nodes(packed: PackedContext) -> list[NodeWithScore]:
    """One ``NodeWithScore`` per span of a packed context, in context order."""
    return [NodeWithScore(node=_span_node(span, marker), score=float(span.score))
            for marker, span in enumerate(packed.spans, 1)]


def _span_node(span: Span, marker: int) -> TextNode:
    return TextNode(
        id_=f"{span.doc_id}:{span.start}-{span.end}",
        text=span.text,
        start_char_idx=span.start,
        end_char_idx=span.end,
        metadata={"doc_id": span.doc_id, "tokens": span.tokens, "marker": marker, "trimmed": span.trimmed,
                  **({"header": span.header} if span.header else {})},
        excluded_llm_metadata_keys=list(_SPAN_METADATA),
        excluded_embed_metadata_keys=list(_SPAN_METADATA),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=span.doc_id)},
    )


def _piece(scored: NodeWithScore) -> Piece:
    node = scored.node
    doc_id = node.metadata.get("doc_id")
    if doc_id is None and node.source_node is not None:
        doc_id = node.source_node.node_id
    return Piece(
        text=node.get_content(metadata_mode=MetadataMode.NONE),
        doc_id=None if doc_id is None else str(doc_id),
        start=getattr(node, "start_char_idx", None),
        end=getattr(node, "end_char_idx", None),
        score=scored.score,
    )


def _packed_node(piece: PackedPiece, nodes: Sequence[NodeWithScore]) -> NodeWithScore:
    source = nodes[piece.sources[0]]
    node = source.node
    if len(piece.sources) == 1 and piece.text == node.get_content(metadata_mode=MetadataMode.NONE):
        return source
    offsets = (piece.start, piece.end) if piece.located else (None, None)
    update = {"id_": f"{node.node_id}:{piece.start}-{piece.end}", "text": piece.text,
              "start_char_idx": offsets[0], "end_char_idx": offsets[1], "metadata": dict(node.metadata)}
    if isinstance(node, TextNode):
        copy = node.model_copy(update=update)
    else:
        copy = TextNode(**update, relationships=dict(node.relationships))
    return NodeWithScore(node=copy, score=source.score)
