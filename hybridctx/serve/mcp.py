"""``hybridctx mcp``: a Model Context Protocol server over stdio or streamable HTTP.

Why: agents reach tools over MCP, and an agent that reads long documents needs
the same choice a person does: retrieve a packed, cited context within a
budget, or see what sending everything would cost first. The tools are thin
calls into ``HybridContext`` (``retrieve``, ``route``) and its store
(``list_documents``, ``read_span``), built on the official SDK's
``MCPServer``, whose results carry both the JSON text and structured content.
Tools are read-only; a user's mistake (an unknown document, offsets outside
it) comes back as a tool error naming it, never as a crash of the server.
"""

# No ``from __future__ import annotations``: the SDK reads each tool's parameter types from
# its signature at run time, and the aliases below (``Index``, ``DocIds``) are local names.
import functools
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping

from hybridctx.errors import HybridCtxError, MissingDependencyError

__all__ = ["MAX_SPAN_CHARS", "McpSettings", "build_mcp_server"]

logger = logging.getLogger(__name__)

#: The longest span ``read_span`` returns (a tool result is read by a model; page through more).
MAX_SPAN_CHARS = 200_000


@dataclass(frozen=True)
class McpSettings:
    """The server's defaults.

    Attributes:
        profile: the model profile ``route`` costs against.
        profiles_file: extra or overriding model profiles.
        tokenizer: the tokenizer ``retrieve`` counts its budget in.
        budget: the budget of ``retrieve`` when none is asked.
    """

    profile: str = "smollm2-135m-cpu"
    profiles_file: str | None = None
    tokenizer: str = "cl100k_base"
    budget: int = 2048


def build_mcp_server(indexes: Mapping[str, Any], settings: McpSettings | None = None) -> Any:
    """An ``MCPServer`` with the four tools over ``indexes`` (name → opened ``HybridContext``).

    Raises:
        MissingDependencyError: the ``mcp`` SDK (2.x) is not installed.
    """
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
        from mcp.types import ToolAnnotations
        from pydantic import Field
    except ImportError:
        raise MissingDependencyError("mcp>=2.3", "serve", "hybridctx mcp") from None
    from hybridctx import __version__

    opts = settings or McpSettings()
    names = list(indexes)
    default = names[0]
    which = f"one of: {', '.join(names)} (default {default})"
    server = MCPServer(
        "hybridctx", version=__version__,
        instructions=(f"Long documents indexed by hybridctx ({which}). Call list_documents to see them, "
                      "route to learn whether a question needs the whole corpus, retrieve for a packed, cited "
                      "context within a token budget, and read_span to read exact text by character offsets."),
    )
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                open_world_hint=False)
    Index = Annotated[str | None, Field(description=f"the index to use, {which}")]
    DocIds = Annotated[list[str] | None, Field(description="restrict to these document ids (list_documents)")]

    def pick(index: str | None) -> Any:
        name = default if index is None else index
        if name not in indexes:
            raise ToolError(f"no index {name!r}; this server has {', '.join(names)}")
        return indexes[name]

    def guarded(fn: Any) -> Any:
        """The tool body with hybridctx's own errors as tool errors (their message kept)."""
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except HybridCtxError as exc:
                raise ToolError(str(exc)) from exc
        return run

    def retrieve(
        query: Annotated[str, Field(description="what to find")],
        budget: Annotated[int | None, Field(ge=1, le=1_000_000,
                                            description=f"tokens the packed context may hold (default {opts.budget})")] = None,
        doc_ids: DocIds = None,
        order: Annotated[Literal["document", "relevance"], Field(description="span layout")] = "document",
        index: Index = None,
    ) -> dict[str, Any]:
        """Retrieve the spans that answer a query and pack them within a token budget. Returns the rendered
        context (each span under a [n] marker to cite) and every span's document id, character offsets and text."""
        hc = pick(index)
        packed = hc.retrieve(query, budget=budget or opts.budget, tokenizer=opts.tokenizer,
                             doc_ids=doc_ids or None, order=order)
        return {"query": query, "budget": packed.budget, "tokens": packed.tokens, "tokenizer": packed.tokenizer,
                "context": packed.context,
                "spans": [{"marker": i, **s.to_json()} for i, s in enumerate(packed.spans, 1)]}

    def route(
        query: Annotated[str, Field(description="the question")],
        doc_ids: DocIds = None,
        budget: Annotated[int | None, Field(ge=1, description="retrieval budget to weigh")] = None,
        max_usd: Annotated[float | None, Field(gt=0, description="most money one request may cost")] = None,
        max_latency_s: Annotated[float | None, Field(gt=0, description="most seconds one request may take")] = None,
        index: Index = None,
    ) -> dict[str, Any]:
        """Decide whether a question needs the full documents or retrieval, with the cost, latency, window and
        memory estimates of both for the server's model profile, and the reason in one sentence."""
        from hybridctx.routing.router import RouteLimits

        limits = RouteLimits.from_mapping({k: v for k, v in (("max_usd", max_usd), ("max_latency_s", max_latency_s))
                                           if v is not None})
        decision = pick(index).route(query, profile=opts.profile, limits=limits, doc_ids=doc_ids or None,
                                     budget=budget, profiles_file=opts.profiles_file)
        return decision.to_json()

    def list_documents(
        offset: Annotated[int, Field(ge=0, description="skip this many documents")] = 0,
        limit: Annotated[int, Field(ge=1, le=1000, description="list at most this many")] = 100,
        index: Index = None,
    ) -> dict[str, Any]:
        """List the indexed documents (id, title, characters, source), sorted by id, a page at a time."""
        store = pick(index).store
        ids = sorted(store.doc_ids())
        documents = []
        for doc_id in ids[offset:offset + limit]:
            doc = store.document(doc_id)
            documents.append({"doc_id": doc_id, "title": doc.title, "chars": len(doc.text), "source": doc.source})
        return {"total": len(ids), "offset": offset, "documents": documents}

    def read_span(
        doc_id: Annotated[str, Field(description="the document")],
        start: Annotated[int, Field(ge=0, description="first character (offsets as retrieve returns them)")],
        end: Annotated[int, Field(ge=0, description="one past the last character")],
        index: Index = None,
    ) -> dict[str, Any]:
        """Read the exact text of a document between two character offsets."""
        store = pick(index).store
        if not store.has_document(doc_id):
            raise ToolError(f"no document {doc_id!r} in the index; list_documents shows the ids")
        text = store.text(doc_id)
        if not start <= end <= len(text):
            raise ToolError(f"offsets {start}..{end} are outside document {doc_id!r}, which has {len(text)} "
                            "characters; give 0 <= start <= end <= its length")
        if end - start > MAX_SPAN_CHARS:
            raise ToolError(f"{end - start} characters asked; read at most {MAX_SPAN_CHARS} at a time")
        return {"doc_id": doc_id, "start": start, "end": end, "text": text[start:end], "doc_chars": len(text)}

    for fn in (retrieve, route, list_documents, read_span):
        server.add_tool(guarded(fn), annotations=read_only, structured_output=True)
    return server

