"""One question in, one JSON reply out: checks, route, retrieval, and the answer.

Why apart from the routes: the reply (the route decision with its estimates,
the spans with their exact character offsets, the packed tokens against the
budget, the answer and its citations) is what the page draws and what the API
tests check, so it is built in one place. With no LLM the app still routes and
retrieves, and the reply's ``answer`` is ``None``.
"""

from __future__ import annotations

from typing import Any

from .state import RequestError, WebState

__all__ = ["MAX_QUESTION_CHARS", "MIN_BUDGET", "ask", "max_budget"]

#: Below this a span and its source marker hardly fit.
MIN_BUDGET = 64
MAX_QUESTION_CHARS = 2000


def max_budget(profile: Any, limits: Any) -> int:
    """Most context tokens a profile's window holds beside the prompt and the answer."""
    return profile.window - limits.prompt_tokens - limits.answer_tokens


def ask(state: WebState, question: str, doc_id: str, budget: int, profile: str | None = None) -> dict[str, Any]:
    """Route, retrieve (or take the full document) and answer ``question`` about ``doc_id``.

    Args:
        state: the app's index and LLM.
        question: the question.
        doc_id: the document to ask about.
        budget: the retrieval budget in tokens of the profile's tokenizer.
        profile: the model profile to cost against (default: the app's).

    Returns:
        The JSON reply (see ``README.md`` beside this file).

    Raises:
        RequestError: empty or overlong question (422), unknown document
            (404), unknown profile or a budget out of range (422).
    """
    from hybridctx.errors import ConfigError
    from hybridctx.routing.profiles import get_profile
    from hybridctx.routing.router import RouteLimits

    question = (question or "").strip()
    if not question:
        raise RequestError("the question is empty; type a question about the document", 422)
    if len(question) > MAX_QUESTION_CHARS:
        raise RequestError(f"the question has {len(question):,} characters; keep it under "
                           f"{MAX_QUESTION_CHARS:,}", 422)
    state.document(doc_id)
    try:
        model = get_profile(profile or state.settings.profile)
    except ConfigError as exc:
        raise RequestError(str(exc), 422) from exc
    limits = RouteLimits(min_budget=MIN_BUDGET, default_budget=max(budget, MIN_BUDGET),
                         answer_tokens=state.settings.answer_tokens)
    if budget < MIN_BUDGET:
        raise RequestError(f"a budget of {budget} tokens is too small: a span and its source marker need "
                           f"room; give at least {MIN_BUDGET}", 422)
    most = max_budget(model, limits)
    if budget > most:
        raise RequestError(f"a budget of {budget:,} tokens does not fit {model.name}: its {model.window:,}-token "
                           f"window holds at most {most:,} context tokens beside the prompt "
                           f"({limits.prompt_tokens}) and the answer ({limits.answer_tokens}); give at most "
                           f"{most:,}", 422)
    return state.call(_ask, state, question, doc_id, budget, model, limits)


def _ask(state: WebState, question: str, doc_id: str, budget: int, model: Any, limits: Any) -> dict[str, Any]:
    """On the index thread: the whole pipeline for one question."""
    from hybridctx.routing.answering import answer_question, full_context
    from hybridctx.routing.profiles import profile_counter

    hc, doc_ids = state.hc, [doc_id]
    if state.llm is not None:
        answer = answer_question(hc, question, state.llm, profile=model.name, limits=limits, doc_ids=doc_ids,
                                 budget=budget, max_tokens=state.settings.answer_tokens)
        out = answer.to_json()
        return _reply(state, question, doc_id, answer.route, answer.mode, answer.context, out["timings_ms"],
                      answer=answer.text, citations=list(answer.citations), escalation=answer.escalation,
                      usage={"prompt": answer.prompt_tokens, "completion": answer.completion_tokens})
    decision = hc.route(question, profile=model.name, limits=limits, doc_ids=doc_ids, budget=budget)
    tokenizer = profile_counter(model).name
    if decision.mode == "full":
        packed = full_context(hc, tokenizer, doc_ids)
    else:
        packed = hc.retrieve(question, decision.budget, tokenizer=tokenizer, doc_ids=doc_ids)
    timings = {k: round(v, 1) for k, v in packed.timings_ms.items()}
    return _reply(state, question, doc_id, decision.to_json(), decision.mode, packed, timings)


def _reply(state: WebState, question: str, doc_id: str, route: dict[str, Any], mode: str, packed: Any,
           timings_ms: dict[str, float], *, answer: str | None = None, citations: list[int] | None = None,
           escalation: dict[str, Any] | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "question": question,
        "doc_id": doc_id,
        "profile": route.get("profile"),
        "llm": state.llm_label,
        "mode": mode,
        "escalated": escalation is not None,
        "escalation": escalation,
        "route": route,
        "budget": packed.budget,
        "tokens": packed.tokens,
        "tokenizer": packed.tokenizer,
        "spans": [{"marker": i, **span.to_json()} for i, span in enumerate(packed.spans, 1)],
        "dropped": len(packed.dropped),
        "answer": answer,
        "citations": citations or [],
        "usage": usage,
        "timings_ms": timings_ms,
    }
