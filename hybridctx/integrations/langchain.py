"""LangChain plug-in: a retriever, a budget packer and a cost router as Runnables.

Why: a LangChain user keeps their chain and gains what hybridctx owns. The
retriever returns chunk-free spans whose total fits a token budget; the packer
packs *any* retriever's documents to an exact budget in document order (cutting
an over-long one to whole sentences); the router chooses full context or
retrieval per question and says why. Each composes with LCEL::

    chain = {"context": retriever, "question": RunnablePassthrough()} | packer | prompt | llm
    chain = retriever | packer | prompt | llm      # the question rides in the documents' metadata
    chain = router | prompt | llm

``as_runnable`` turns a hybridctx LLM (an OpenAI-compatible server, the local
SmolLM2) into a chat-model Runnable for the last step. Needs the ``langchain``
extra; importing this module without ``langchain-core`` raises
``MissingDependencyError``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from hybridctx.errors import ConfigError, InputError, MissingDependencyError

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.messages import AIMessage, convert_to_openai_messages
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, RunnableSerializable
    from pydantic import Field, PrivateAttr
except ImportError as exc:
    if (exc.name or "langchain_core").split(".")[0] not in ("langchain_core", "pydantic"):
        raise  # installed but broken: the original error says more
    raise MissingDependencyError("langchain-core", "langchain", "the LangChain integration") from exc

from hybridctx.datatypes import PackedContext, Span
from hybridctx.integrations.index_thread import IndexThread
from hybridctx.packing.pieces import PackedPiece, Piece, pack_pieces
from hybridctx.retrieval.retriever import RetrievalOptions

__all__ = ["BudgetPacker", "CostRouter", "HybridCtxRetriever", "as_runnable", "span_documents"]

logger = logging.getLogger(__name__)


class HybridCtxRetriever(BaseRetriever):
    """Chunk-free retrieval from a hybridctx index, as a LangChain retriever.

    Each returned ``Document`` is one packed span: ``page_content`` is its text
    (exactly ``document[start:end]``) and ``metadata`` holds ``doc_id``,
    ``start``, ``end``, ``score``, ``tokens``, ``marker`` (its ``[k]`` in the
    rendered context), ``trimmed`` and ``query``, and ``header`` when the
    index was opened with ``RetrievalConfig(header_markers=True)`` (the section
    its marker names). Documents come in document order and together fit
    ``budget`` tokens, markers included.

    Example::

        retriever = HybridCtxRetriever.from_index("alice.idx", budget=800)
        docs = retriever.invoke("What did the bottle's label say?")

    Built ``from_index``, the index gets a thread of its own, so the retriever
    works from any thread (LangChain's parallel maps and ``batch`` use a thread
    pool) and ``ainvoke`` does not block the event loop. Built with ``hc=`` an
    index you opened, it is used in place: from the thread that opened it only.

    Attributes:
        hc: an opened ``HybridContext`` (or the ``IndexThread`` ``from_index`` makes).
        budget: tokens the spans may take, rendered with their markers.
        tokenizer: the tokenizer that counts them (``cl100k_base``, ``o200k_base``,
            or a ``tokenizer.json`` path).
        doc_ids: search only these documents.
        reserve: tokens kept free inside ``budget``.
        search_mode: override the index's search mode (``hybrid``, ``dense``, ``lexical``).
    """

    hc: Any
    budget: int = Field(default=1000, gt=0)
    tokenizer: str = "cl100k_base"
    doc_ids: list[str] | None = None
    reserve: int = Field(default=0, ge=0)
    search_mode: Literal["hybrid", "dense", "lexical"] | None = None
    _index: IndexThread = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._index = IndexThread.adopt(self.hc)

    @classmethod
    def from_index(cls, index_dir: str | Path, **fields: Any) -> HybridCtxRetriever:
        """Open the index at ``index_dir`` on a thread of its own; ``fields`` as for the class."""
        return cls(hc=IndexThread.open(index_dir), **fields)

    def retrieve_packed(self, query: str) -> PackedContext:
        """The packed context behind the documents, with its rendered text and timings."""
        return self._index.call(_retrieve, query, self._options())

    def _options(self) -> RetrievalOptions:
        return RetrievalOptions(budget=self.budget, tokenizer=self.tokenizer, doc_ids=self.doc_ids,
                                mode=self.search_mode, reserve=self.reserve)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return span_documents(self.retrieve_packed(query))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        packed = await self._index.acall(_retrieve, query, self._options())
        return span_documents(packed)


class BudgetPacker(RunnableSerializable[Any, dict[str, Any]]):
    """Packs any list of LangChain documents to an exact token budget, in document order.

    Input: a list of ``Document``, or a dict holding one under ``key`` (other
    keys pass through, so ``{"context": retriever, "question":
    RunnablePassthrough()} | packer | prompt`` works). A document is placed by
    its metadata when it has a document id (``doc_id``, else ``source``) and a
    start offset (``start``, else ``start_index`` as LangChain's splitters
    write it); overlapping documents of one source are merged, and documents
    without offsets keep their input order. Selection is by ``score`` (or
    ``relevance_score``) when every document has one, else by input order; an
    over-long document is cut to the whole sentences at its start that fit.

    Output: a dict with ``context`` (the rendered text, a ``[k] doc_id`` line
    before each piece), ``documents`` (the packed documents: copies with the
    packed text and ``marker``, ``tokens``, ``trimmed`` and updated offsets in
    their metadata), ``tokens`` (true count of ``context``, ``<= budget -
    reserve``), ``budget``, ``dropped`` (input documents left out), and
    ``question`` when the input carried one (or every document's metadata holds
    the same ``query``, as ``HybridCtxRetriever`` writes it).

    Attributes:
        budget: tokens of the rendered context.
        tokenizer: the tokenizer that counts them.
        reserve: tokens kept free inside ``budget``.
        markers: precede each piece with its ``[k] doc_id`` line.
        allow_trim: cut an over-long document to whole sentences instead of dropping it.
        key: where the documents are in a dict input.
    """

    budget: int = Field(gt=0)
    tokenizer: str = "cl100k_base"
    reserve: int = Field(default=0, ge=0)
    markers: bool = True
    allow_trim: bool = True
    key: str = "context"

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        """Pack ``input`` (see the class docstring)."""
        return self._call_with_config(self._pack, input, config, **kwargs)

    def _pack(self, value: Any) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if isinstance(value, Mapping):
            if self.key not in value:
                raise InputError(f"the packer's input has no '{self.key}' key (keys: {', '.join(map(str, value))}); "
                                 "set key= to where the documents are")
            extras = {k: v for k, v in value.items() if k != self.key}
            value = value[self.key]
        docs = _as_documents(value)
        packed = pack_pieces([_piece(d) for d in docs], self.budget, self.tokenizer, reserve=self.reserve,
                             markers=self.markers, allow_trim=self.allow_trim)
        out = {
            **extras,
            "context": packed.context,
            "documents": [_packed_document(p, docs) for p in packed.pieces],
            "tokens": packed.tokens,
            "budget": self.budget,
            "dropped": [docs[i] for i in packed.dropped],
        }
        queries = {d.metadata.get("query") for d in docs}
        if "question" not in out and len(queries) == 1 and isinstance(next(iter(queries)), str):
            out["question"] = queries.pop()
        return out


class CostRouter(RunnableSerializable[Any, dict[str, Any]]):
    """Chooses full context or retrieval per question by cost, and says why.

    Input: the question, or a dict holding it under ``question_key`` (other
    keys pass through). Output: a dict with ``question``, ``mode`` (``full`` or
    ``retrieval``), ``reason`` (a sentence with the numbers), ``budget``,
    ``estimates`` (cost, latency, KV memory of both modes, as in ``hybridctx
    route --json``), ``intent``, ``within_limits``, ``decision`` (the
    ``RouteDecision``), and the chosen ``context`` with its ``documents`` and
    ``tokens``, counted in the profile's tokenizer. Threads as for
    ``HybridCtxRetriever``: build it ``from_index`` to use it anywhere.

    Attributes:
        hc: an opened ``HybridContext`` (or the ``IndexThread`` ``from_index`` makes).
        profile: the model profile costs are estimated for.
        limits: a ``RouteLimits`` or a dict of its fields.
        budget: retrieval budget to weigh (default: the limits').
        doc_ids: restrict to these documents.
        profiles_file: a user TOML file of profiles.
        question_key: where the question is in a dict input.
    """

    hc: Any
    profile: str = "smollm2-135m-cpu"
    limits: Any = None
    budget: int | None = None
    doc_ids: list[str] | None = None
    profiles_file: str | None = None
    question_key: str = "question"
    _index: IndexThread = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._index = IndexThread.adopt(self.hc)

    @classmethod
    def from_index(cls, index_dir: str | Path, **fields: Any) -> CostRouter:
        """Open the index at ``index_dir`` on a thread of its own; ``fields`` as for the class."""
        return cls(hc=IndexThread.open(index_dir), **fields)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        """Route ``input`` and gather its context (see the class docstring)."""
        return self._call_with_config(self._route, input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        """Async ``invoke``; the index work runs on the index's thread."""
        return await self._acall_with_config(self._aroute, input, config, **kwargs)

    def _route(self, value: Any) -> dict[str, Any]:
        question, extras = self._question(value)
        return self._output(question, extras, *self._index.call(_route_and_gather, question, self._options()))

    async def _aroute(self, value: Any) -> dict[str, Any]:
        question, extras = self._question(value)
        found = await self._index.acall(_route_and_gather, question, self._options())
        return self._output(question, extras, *found)

    def _question(self, value: Any) -> tuple[str, dict[str, Any]]:
        extras: dict[str, Any] = {}
        if isinstance(value, Mapping):
            extras = dict(value)
            value = extras.pop(self.question_key, None)
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"the router needs a question as a string or under '{self.question_key}'; "
                             f"got {type(value).__name__}")
        return value, extras

    def _options(self) -> dict[str, Any]:
        from hybridctx.routing.router import RouteLimits

        limits = RouteLimits.from_mapping(self.limits) if isinstance(self.limits, Mapping) else self.limits
        return {"profile": self.profile, "limits": limits, "doc_ids": self.doc_ids, "budget": self.budget,
                "profiles_file": self.profiles_file}

    @staticmethod
    def _output(question: str, extras: dict[str, Any], decision: Any, packed: PackedContext) -> dict[str, Any]:
        return {
            **extras,
            "question": question,
            "mode": decision.mode,
            "reason": decision.reason,
            "budget": decision.budget,
            "estimates": decision.to_json()["estimates"],
            "intent": decision.intent,
            "within_limits": decision.within_limits,
            "decision": decision,
            "context": packed.context,
            "documents": span_documents(packed, query=question),
            "tokens": packed.tokens,
        }


def _retrieve(hc: Any, query: str, options: RetrievalOptions) -> PackedContext:
    return hc.retrieve(query, options=options)


def _route_and_gather(hc: Any, question: str, options: Mapping[str, Any]) -> tuple[Any, PackedContext]:
    """Route ``question`` and gather the context of the chosen mode, in the profile's tokenizer."""
    from hybridctx.routing.answering import full_context
    from hybridctx.routing.profiles import get_profile, profile_counter

    decision = hc.route(question, **options)
    tokenizer = profile_counter(get_profile(options["profile"], options["profiles_file"])).name
    if decision.mode == "full":
        return decision, full_context(hc, tokenizer, options["doc_ids"])
    return decision, hc.retrieve(question, decision.budget, tokenizer=tokenizer, doc_ids=options["doc_ids"])


def as_runnable(llm: Any, *, max_tokens: int = 256, temperature: float = 0.0) -> Runnable[Any, AIMessage]:
    """A hybridctx LLM as a LangChain chat-model step.

    Takes a prompt value (``ChatPromptTemplate`` output), a list of messages or
    a string, and returns an ``AIMessage`` with ``usage_metadata`` from the
    backend; follow it with ``StrOutputParser()`` for the text.

    Args:
        llm: a hybridctx ``LLM`` (``load_llm("local")``, ``OpenAICompatibleLLM``...).
        max_tokens: the longest answer.
        temperature: 0 for greedy decoding.

    Raises:
        ConfigError: ``llm`` has no ``generate`` method.
    """
    if not callable(getattr(llm, "generate", None)):
        raise ConfigError(f"{type(llm).__name__} is not a hybridctx LLM (it has no generate method); "
                          "build one with hybridctx.llms.load_llm")

    def generate(value: Any) -> AIMessage:
        if hasattr(value, "to_messages"):
            value = value.to_messages()
        elif isinstance(value, str):
            value = [("human", value)]
        messages = convert_to_openai_messages(value)
        completion = llm.generate(messages, max_tokens=max_tokens, temperature=temperature)
        return AIMessage(
            content=completion.text,
            usage_metadata={"input_tokens": completion.prompt_tokens,
                            "output_tokens": completion.completion_tokens,
                            "total_tokens": completion.prompt_tokens + completion.completion_tokens},
            response_metadata={"model_name": completion.model, "finish_reason": completion.finish_reason},
        )

    return RunnableLambda(generate, name=f"hybridctx-llm:{getattr(llm, 'name', type(llm).__name__)}")


def span_documents(packed: PackedContext, query: str | None = None) -> list[Document]:
    """One ``Document`` per span of a packed context, in context order."""
    query = packed.query if query is None else query
    return [_span_document(span, marker, query) for marker, span in enumerate(packed.spans, 1)]


def _span_document(span: Span, marker: int, query: str) -> Document:
    metadata = {"doc_id": span.doc_id, "start": span.start, "end": span.end, "score": float(span.score),
                "tokens": span.tokens, "marker": marker, "trimmed": span.trimmed, "query": query}
    if span.header:  # what its marker line names (RetrievalConfig.header_markers)
        metadata["header"] = span.header
    return Document(id=f"{span.doc_id}:{span.start}-{span.end}", page_content=span.text, metadata=metadata)


def _as_documents(value: Any) -> list[Document]:
    if isinstance(value, Document) or not isinstance(value, Sequence) or isinstance(value, str):
        raise InputError(f"the packer takes a list of LangChain Documents; got {type(value).__name__}")
    for i, doc in enumerate(value):
        if not isinstance(doc, Document):
            raise InputError(f"item {i} given to the packer is a {type(doc).__name__}, not a LangChain Document")
    return list(value)


def _piece(doc: Document) -> Piece:
    meta = doc.metadata or {}
    doc_id = meta.get("doc_id", meta.get("source"))
    start = meta.get("start", meta.get("start_index"))
    end = meta.get("end") if "start" in meta else None
    score = meta.get("score", meta.get("relevance_score"))
    return Piece(
        text=doc.page_content,
        doc_id=None if doc_id is None else str(doc_id),
        start=start if _is_int(start) else None,
        end=end if _is_int(end) else None,
        score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _packed_document(piece: PackedPiece, docs: Sequence[Document]) -> Document:
    source = docs[piece.sources[0]]
    meta = dict(source.metadata or {})
    meta.update(marker=piece.marker, tokens=piece.tokens, trimmed=piece.trimmed)
    if len(piece.sources) > 1:
        meta["merged"] = len(piece.sources)
    if piece.located:
        if "start" in meta:
            meta.update(start=piece.start, end=piece.end)
        else:
            meta["start_index"] = piece.start
    unchanged = len(piece.sources) == 1 and piece.text == source.page_content
    return Document(id=source.id if unchanged else None, page_content=piece.text, metadata=meta)
