"""The ``hybridctx`` field a gateway response carries: route, cited spans, estimates.

Why its own module: it is a public contract (docs/serve.md documents it, and
``version`` says which), read by clients that want the evidence behind an
answer and ignored by every other OpenAI client, since unknown fields are
allowed. One function builds it for the final JSON response and for the last
chunk of a stream, so the two never differ.

Span texts are cut to ``span_chars`` characters (``truncated`` says so): in
full-context mode a span is a whole document, and a chat UI should not
receive the corpus with every answer. The offsets always cover the whole
span, so ``text`` can be read back in full (the MCP tool ``read_span``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXTENSION_VERSION", "build_extension"]

#: Raised when a field changes meaning or goes away; new fields do not raise it.
EXTENSION_VERSION = 1


def build_extension(result: Any, *, span_chars: int = 4000) -> dict[str, Any]:
    """The extension for one answered turn (a ``TurnResult``).

    Keys: ``version``, ``index``, ``mode`` (``full`` or ``retrieval``, after
    any escalation), ``escalated``, ``route`` (the router's first decision:
    ``mode``, ``reason``, ``budget``, ``intent``, ``profile``,
    ``within_limits`` and ``estimates`` of both modes), ``escalation`` (the
    Self-Route step, or ``None``), ``citations`` (the spans the answer cites
    by marker), ``spans`` (every span of the context), ``context_tokens``,
    ``tokenizer``, ``estimated_usd``, ``usage`` (all upstream calls),
    ``upstream_calls``, ``timings_ms`` and ``finish_reason``.

    Each span: ``marker`` (its ``[n]`` in the prompt), ``doc_id``,
    ``start``, ``end`` (character offsets into the document), ``score``,
    ``tokens``, ``text`` and ``truncated``.
    """
    answer = result.answer
    spans = [_span(i, span, span_chars) for i, span in enumerate(answer.context.spans, 1)]
    cited = [spans[m - 1] for m in answer.citations if 0 < m <= len(spans)]
    data = answer.to_json()
    return {
        "version": EXTENSION_VERSION,
        "index": result.index,
        "mode": answer.mode,
        "escalated": answer.escalated,
        "route": answer.route,
        "escalation": answer.escalation,
        "citations": cited,
        "spans": spans,
        "context_tokens": answer.context.tokens,
        "tokenizer": answer.context.tokenizer,
        "estimated_usd": data["estimated_usd"],
        "usage": result.usage,
        "upstream_calls": len(result.completions),
        "timings_ms": data["timings_ms"],
        "finish_reason": result.finish_reason,
    }


def _span(marker: int, span: Any, span_chars: int) -> dict[str, Any]:
    out = {"marker": marker, **span.to_json()}
    out["truncated"] = len(span.text) > span_chars
    if out["truncated"]:
        out["text"] = span.text[:span_chars]
    return out
