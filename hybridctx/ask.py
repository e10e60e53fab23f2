"""Answering a question: route → full context or retrieve + pack → generate,
with one Self-Route escalation when a retrieval answer says it cannot answer.

Why its own module: it composes the router, the retriever and an LLM, and
reports every number a user needs to trust the answer (route, spans, tokens,
estimated cost, timings).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hybridctx.datatypes import PackedContext, Span

__all__ = ["Answer", "answer_question"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """An answer with the evidence and the numbers behind it."""

    query: str
    text: str
    mode: str
    route: dict[str, Any]
    context: PackedContext
    citations: tuple[int, ...]
    escalated: bool = False
    escalation: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        spans = self.context.spans
        return {
            "query": self.query,
            "answer": self.text,
            "mode": self.mode,
            "escalated": self.escalated,
            "route": self.route,
            "escalation": self.escalation,
            "citations": [
                {"marker": m, **spans[m - 1].to_json()} for m in self.citations if 0 < m <= len(spans)
            ],
            "spans": [s.to_json() for s in spans],
            "tokens": {"context": self.context.tokens, "prompt": self.prompt_tokens,
                       "completion": self.completion_tokens},
            "estimated_usd": self.route.get("estimates", {}).get(self.mode, {}).get("usd"),
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }


def full_context(hc: Any, tokenizer: str, doc_ids: Sequence[str] | None) -> PackedContext:
    """Every document in scope, whole, with a source marker each."""
    from hybridctx.packing import render
    from hybridctx.tokens import get_counter

    counter = get_counter(tokenizer)
    ids = list(doc_ids) if doc_ids else hc.store.doc_ids()
    spans = []
    for doc_id in ids:
        text = hc.store.text(doc_id)
        spans.append(Span(doc_id, 0, len(text), 1.0, counter.count(text), text))
    context = render(spans)
    return PackedContext("", counter.count(context), tokenizer, counter.count(context), context, tuple(spans))


def answer_question(
    hc: Any,
    query: str,
    llm: Any,
    *,
    profile: str = "smollm2-135m-cpu",
    limits: Any = None,
    doc_ids: Sequence[str] | None = None,
    budget: int | None = None,
    max_tokens: int = 256,
    on_token: Callable[[str], None] | None = None,
    profiles_file: str | None = None,
) -> Answer:
    """Route, gather context, generate, and escalate once if the answer gives up.

    Args:
        hc: an opened ``HybridContext``.
        query: the question.
        llm: an ``LLM`` backend.
        profile: the model profile the router costs against.
        limits: ``RouteLimits``.
        doc_ids: restrict to these documents.
        budget: retrieval budget to weigh (default: the router's).
        max_tokens: longest answer.
        on_token: streaming callback.
    """
    from hybridctx.llms.prompts import build_messages, cited_markers, says_unanswerable
    from hybridctx.profiles import get_profile
    from hybridctx.router import RouteLimits, Router

    timings: dict[str, float] = {}
    started = time.perf_counter()
    model = get_profile(profile, profiles_file)
    limits = limits or RouteLimits(answer_tokens=max_tokens)
    decision = hc.route(query, profile=profile, limits=limits, doc_ids=doc_ids, budget=budget,
                        profiles_file=profiles_file)
    timings["route"] = _ms(started)
    tokenizer = _tokenizer_name(model)

    def run(mode: str, this_budget: int) -> tuple[PackedContext, Any]:
        t = time.perf_counter()
        if mode == "full":
            packed = full_context(hc, tokenizer, doc_ids)
        else:
            packed = hc.retrieve(query, budget=this_budget, tokenizer=tokenizer, doc_ids=doc_ids)
        timings[f"context_{mode}"] = _ms(t)
        t = time.perf_counter()
        completion = llm.generate(build_messages(query, packed, mode=mode), max_tokens=max_tokens,
                                  stream=on_token is not None, on_token=on_token)
        timings[f"generate_{mode}"] = _ms(t)
        return packed, completion

    packed, completion = run(decision.mode, decision.budget)
    escalation = None
    if decision.mode == "retrieval" and says_unanswerable(completion.text):
        full_tokens = decision.estimates["full"].input_tokens - limits.prompt_tokens
        step = Router(model, limits).escalate(decision, full_tokens)
        if step is not None:
            logger.info("escalating after an unanswerable retrieval answer: %s", step.reason)
            escalation = step.to_json()
            packed, completion = run(step.mode, step.budget)
            decision_mode = step.mode
        else:
            decision_mode = decision.mode
    else:
        decision_mode = decision.mode
    timings["total"] = _ms(started)
    return Answer(
        query=query, text=completion.text.strip(), mode=decision_mode, route=decision.to_json(),
        context=packed, citations=tuple(cited_markers(completion.text, limit=len(packed.spans))),
        escalated=escalation is not None, escalation=escalation, prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens, timings_ms=timings,
    )


def _tokenizer_name(profile: Any) -> str:
    from hybridctx.profiles import profile_counter

    return profile_counter(profile).name


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
