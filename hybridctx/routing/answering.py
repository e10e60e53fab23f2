"""Answering a question: route → full context or retrieve + pack → generate,
with one Self-Route escalation when a retrieval answer says it cannot answer.

Why its own module: it composes the router, the retriever and an LLM, and
reports every number a user needs to trust the answer (route, spans, tokens,
estimated cost, timings). Only a model's answer can escalate: a server that
fails, cuts its stream or sends no answer raises ``LLMError`` (the client's
retries spent), never an empty "unanswerable" answer. One deadline covers all
of a question's LLM calls, the escalation included.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hybridctx.datatypes import PackedContext, Span
from hybridctx.errors import ConfigError, LLMError

if TYPE_CHECKING:
    from hybridctx.llms.protocol import LLM, Completion
    from hybridctx.routing.profiles import ModelProfile
    from hybridctx.routing.router import RouteDecision, RouteLimits, RouteMode

__all__ = ["Answer", "AnswerSource", "DocumentSource", "answer_question", "check_question"]

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
    finish_reason: str | None = None

    @property
    def truncated(self) -> bool:
        """True when the answer stopped at ``max_tokens``."""
        return self.finish_reason == "length"

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
            "finish_reason": self.finish_reason,
        }


def check_question(
    query: str,
    *,
    budget: int | None = None,
    max_tokens: int = 256,
    deadline_s: float | None = None,
    max_usd: float | None = None,
    max_latency_s: float | None = None,
) -> None:
    """Refuse a question or option that cannot work, before anything is loaded.

    The checks are the command line's (``hybridctx.cli.checks``), named by its
    flags, so ``ask`` refuses what ``retrieve`` and ``route`` refuse.

    Raises:
        InputError: an empty question, or one UTF-8 cannot carry; a budget
            outside 1 to ``MAX_BUDGET``; a deadline, money or latency limit
            that is not a positive, finite number.
        ConfigError: ``max_tokens`` below 1.
    """
    from hybridctx.cli.checks import check_budget, check_limit, check_query

    check_query(query)
    if budget is not None:
        check_budget(budget)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ConfigError(f"--max-tokens {max_tokens!r} must be a whole number of tokens, at least 1")
    for flag, value, unit in (("--timeout", deadline_s, "seconds"), ("--max-usd", max_usd, "dollars"),
                              ("--max-latency-s", max_latency_s, "seconds")):
        if value is not None:
            check_limit(value, flag, unit)


class DocumentSource(Protocol):
    """The documents of an index: their ids in index order and their texts."""

    def doc_ids(self) -> list[str]: ...

    def text(self, doc_id: str) -> str: ...


class AnswerSource(Protocol):
    """What answering needs of an index: a :class:`~hybridctx.facade.HybridContext`,
    or an evaluation's stand-in (:class:`hybridctx.eval.answer_eval.EvalCorpus`).
    A ``record_full_send`` method, when it has one, is called after a full-context answer."""

    @property
    def store(self) -> DocumentSource: ...

    def route(self, query: str, *, profile: str, limits: RouteLimits | None, doc_ids: Sequence[str] | None,
              budget: int | None, profiles_file: str | Path | None, expected_questions: int = 1,
              session: bool = True, session_salt: str = "") -> RouteDecision: ...

    def retrieve(self, query: str, budget: int, /, *, tokenizer: str,
                 doc_ids: Sequence[str] | None) -> PackedContext: ...


def full_context(hc: AnswerSource, tokenizer: str, doc_ids: Sequence[str] | None) -> PackedContext:
    """Every document in scope, whole, with a source marker each."""
    from hybridctx.packing.packer import render
    from hybridctx.packing.tokens import get_counter

    counter = get_counter(tokenizer)
    ids = hc.store.doc_ids()
    if doc_ids:  # in the index's order, whatever order they were named in: one scope, one cacheable prefix
        place = {d: i for i, d in enumerate(ids)}
        ids = sorted(dict.fromkeys(doc_ids), key=lambda d: place.get(d, len(place)))
    spans = []
    for doc_id in ids:
        text = hc.store.text(doc_id)
        spans.append(Span(doc_id, 0, len(text), 1.0, counter.count(text), text))
    context = render(spans)
    return PackedContext("", counter.count(context), tokenizer, counter.count(context), context, tuple(spans))


def answer_question(
    hc: AnswerSource,
    query: str,
    llm: LLM,
    *,
    profile: str = "smollm2-135m-cpu",
    limits: RouteLimits | None = None,
    doc_ids: Sequence[str] | None = None,
    budget: int | None = None,
    max_tokens: int = 256,
    on_token: Callable[[str], None] | None = None,
    profiles_file: str | Path | None = None,
    deadline_s: float | None = None,
    on_escalate: Callable[[dict[str, Any]], None] | None = None,
    expected_questions: int = 1,
    session: bool = True,
    session_salt: str = "",
) -> Answer:
    """Route, gather context, generate, and escalate once if the answer gives up.

    Also :meth:`HybridContext.ask <hybridctx.facade.HybridContext.ask>`:
    ``hc.ask(query, llm, ...)`` is ``answer_question(hc, query, llm, ...)``.

    Args:
        hc: an opened ``HybridContext`` (or another :class:`AnswerSource`).
        query: the question.
        llm: an ``LLM`` backend (:func:`hybridctx.llms.load_llm`).
        profile: the model profile the router costs against.
        limits: ``RouteLimits``.
        doc_ids: restrict to these documents.
        budget: retrieval budget to weigh (default: the router's).
        max_tokens: longest answer.
        on_token: streaming callback.
        profiles_file: extra or overriding model profiles.
        deadline_s: the most seconds the question's LLM calls may take
            together, from the start of the first (retries, waits and the
            escalation with its context included; routing and retrieval
            before it are local work and not counted). A backend whose
            ``generate`` takes ``deadline_s`` (the OpenAI-compatible client,
            the local model) is held to what is left of it; for others it
            is checked between calls.
        on_escalate: called with the escalation step (``to_json``) before the
            second generation, e.g. to tell a reader of the stream.
        expected_questions: questions expected on this scope within the
            profile's cache TTL (see ``HybridContext.route``).
        session: consult the index's session ledger and, after a full-context
            answer, record the send in it (a later question is priced warm).
        session_salt: the rest of the cached prefix (a chat's system prompt).

    Raises:
        InputError, ConfigError: see ``check_question``.
        LLMError: the backend gave no answer (its retries spent), or the
            deadline passed; never turned into an escalation.
    """
    from hybridctx.llms.deadline import Deadline
    from hybridctx.llms.prompts import build_messages, cited_markers, says_unanswerable
    from hybridctx.routing.profiles import get_profile
    from hybridctx.routing.router import RouteLimits, Router

    check_question(query, budget=budget, max_tokens=max_tokens, deadline_s=deadline_s)
    clock: list[Deadline] = []  # started by the first LLM call
    timings: dict[str, float] = {}
    started = time.perf_counter()
    model = get_profile(profile, profiles_file)
    limits = limits or RouteLimits(answer_tokens=max_tokens)
    session_options: dict[str, Any] = (
        {} if expected_questions == 1 and session and not session_salt else
        {"expected_questions": expected_questions, "session": session, "session_salt": session_salt})
    decision = hc.route(query, profile=profile, limits=limits, doc_ids=doc_ids, budget=budget,
                        profiles_file=profiles_file, **session_options)
    timings["route"] = _ms(started)
    tokenizer = _tokenizer_name(model)
    full_tokens = decision.estimates["full"].input_tokens - limits.prompt_tokens

    def run(mode: RouteMode, this_budget: int) -> tuple[PackedContext, Completion]:
        t = time.perf_counter()
        if mode == "full":
            packed = full_context(hc, tokenizer, doc_ids)
        else:
            packed = hc.retrieve(query, this_budget, tokenizer=tokenizer, doc_ids=doc_ids)
        timings[f"context_{mode}"] = _ms(t)
        if not clock:
            clock.append(Deadline(deadline_s))
        left = clock[0].remaining()
        if left <= 0:
            raise LLMError(f"the question's {deadline_s:g} s deadline passed before the {mode} answer "
                           "could be generated; raise the deadline (hybridctx ask --timeout)")
        extra: dict[str, Any] = {"deadline_s": left} if deadline_s is not None and _takes_deadline(llm) else {}
        t = time.perf_counter()
        completion: Completion = llm.generate(build_messages(query, packed, mode=mode), max_tokens=max_tokens,
                                  stream=on_token is not None, on_token=on_token, **extra)
        timings[f"generate_{mode}"] = _ms(t)
        record = getattr(hc, "record_full_send", None)
        if mode == "full" and session and record is not None:
            record(model.name, doc_ids, full_tokens, salt=session_salt)
        return packed, completion

    packed, completion = run(decision.mode, decision.budget)
    escalation: dict[str, Any] | None = None
    decision_mode: RouteMode
    if decision.mode == "retrieval" and says_unanswerable(completion.text):
        step = Router(model, limits).escalate(decision, full_tokens)
        if step is not None:
            logger.info("escalating after an unanswerable retrieval answer: %s", step.reason)
            escalation = step.to_json()
            if on_escalate is not None:
                on_escalate(escalation)
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
        finish_reason=completion.finish_reason,
    )


def _takes_deadline(llm: LLM) -> bool:
    """Whether ``llm.generate`` accepts ``deadline_s`` (plug-ins written before it need not)."""
    try:
        return "deadline_s" in inspect.signature(llm.generate).parameters
    except (TypeError, ValueError):
        return False


def _tokenizer_name(profile: ModelProfile) -> str:
    from hybridctx.routing.profiles import profile_counter

    return profile_counter(profile).name


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
