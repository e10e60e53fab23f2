"""Answers, not only evidence: each policy's context handed to an LLM with ask's prompt, and the answer judged.

Why: evidence recall says whether the facts were *sent*; a reader (a long-context
model loses facts, a small model loops or refuses) decides whether they were
*used*. This loop answers each question of a QA set under each policy and
scores the answer (:mod:`hybridctx.eval.answer_scoring`), with what it cost:

- a retrieval policy (a method at a budget, ``hybridctx eval qa --llm``): the
  packed context, one call, no escalation;
- ``always-full``: every document in scope, whole (cut at the window when it
  does not fit, as a truncating client sends it);
- ``always-retrieve``: hybridctx retrieval at the budget, no escalation;
- ``router``: :func:`hybridctx.routing.answering.answer_question` itself, Self-Route's real
  loop: route, answer, and when the retrieval answer refuses, escalate once.

The prompt is always :func:`hybridctx.llms.prompts.build_messages` and a refusal
is what :func:`~hybridctx.llms.prompts.says_unanswerable` says it is, as in
``ask``. Every call goes through :class:`~hybridctx.eval.answer_cache.MeteredLLM`
(answers cached on disk; tokens and seconds recorded), and money is priced by
the profile: input and output tokens at its prices plus the measured seconds at
its hourly rate. Rendering is in :mod:`hybridctx.eval.answer_report`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from hybridctx.datatypes import PackedContext, Span
from hybridctx.errors import ContextLengthError
from hybridctx.eval.answer_scoring import score_answer
from hybridctx.eval.datasets import EvalSet, QAItem
from hybridctx.eval.scoring import score_question

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.eval.answer_cache import MeteredLLM
    from hybridctx.eval.peers import RetrievalMethod
    from hybridctx.routing.profiles import ModelProfile
    from hybridctx.packing.tokens import TokenCounter

__all__ = ["AnswerReport", "AnswerRow", "Policy", "evaluate_answers", "question_text"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    """How a question's context is chosen.

    Attributes:
        name: shown in tables.
        kind: ``retrieval`` (``method`` at ``budget``), ``full`` or ``router``.
        method: the retrieval method (``full`` needs none).
        budget: the retrieval budget (``router``: the one it weighs, ``None``
            for its own).
    """

    name: str
    kind: str
    method: Any = None
    budget: int | None = None


@dataclass(frozen=True)
class AnswerRow:
    """One question answered under one policy.

    Attributes:
        dataset, id, policy: which.
        mode: the context of the final answer (``full`` or ``retrieval``).
        escalated: Self-Route sent a second request after a refusal.
        answer: the final answer.
        refused: the final answer says the context does not hold the answer.
        first_refused: the first answer refused (before any escalation).
        em, f1: against the gold answers (``None`` without answer text).
        choice_correct, chosen: the option picked (multiple choice only).
        recall: the DESIGN.md score of the final context (``None`` when the
            question has no context gold).
        context_tokens: tokens of the final context (profile tokenizer).
        prompt_tokens, completion_tokens: summed over every call, as the model counted them.
        calls: LLM calls made (2 after an escalation).
        cached_calls: of them, answered from the disk cache.
        seconds: wall seconds of the calls, as first measured.
        usd: the calls priced by the profile.
        error: why no answer was generated (a prompt over the window), else ``None``.
        spans: passages in the final context (1 per document for full context).
    """

    dataset: str
    id: str
    policy: str
    mode: str
    escalated: bool
    answer: str
    refused: bool
    first_refused: bool
    em: float | None
    f1: float | None
    choice_correct: float | None
    chosen: str | None
    recall: float | None
    context_tokens: int
    prompt_tokens: int
    completion_tokens: int
    calls: int
    cached_calls: int
    seconds: float
    usd: float
    error: str | None = None
    spans: int = 0


@dataclass(frozen=True)
class AnswerReport:
    """Every answer of :func:`evaluate_answers`, with the settings behind them."""

    model: str
    profile: str
    policies: tuple[str, ...]
    datasets: tuple[str, ...]
    rows: tuple[AnswerRow, ...]
    max_tokens: int

    def totals(self, dataset: str | None = None) -> dict[str, dict[str, Any]]:
        """Per policy: means of the scores, refusal and escalation counts, and what was spent."""
        from hybridctx.eval.answer_report import policy_totals

        return {p: policy_totals([r for r in self.rows if r.policy == p and dataset in (None, r.dataset)])
                for p in self.policies}

    def to_markdown(self) -> str:
        from hybridctx.eval.answer_report import report_markdown

        return report_markdown(self)

    def to_json(self) -> str:
        from hybridctx.eval.answer_report import report_json

        return report_json(self)

    def write(self, out_dir: Any, *, stem: str = "answers") -> str:
        """Write ``{stem}.md``, ``{stem}.json`` and ``{stem}.png`` (F1 against dollars) into ``out_dir``."""
        from hybridctx.eval.answer_report import write_report

        return write_report(self, out_dir, stem)


def question_text(item: QAItem) -> str:
    """What the model is asked: the question, and its options for a multiple-choice one."""
    if item.options:
        return item.question.strip() + "\n\n" + "\n".join(o.strip() for o in item.options)
    return item.question


class _Store:
    """The two reads :func:`hybridctx.routing.answering.full_context` makes of an index, over an eval set's documents.

    With ``keep`` (``doc_id -> chars``), only those documents, cut to that many
    characters: what a client that truncates at the window sends.
    """

    def __init__(self, docs: Mapping[str, str], keep: Mapping[str, int] | None = None) -> None:
        self.docs, self.keep = docs, keep

    def doc_ids(self) -> list[str]:
        return [d for d in self.docs if self.keep is None or d in self.keep]

    def text(self, doc_id: str) -> str:
        text = self.docs[doc_id]
        return text if self.keep is None else text[: self.keep[doc_id]]


class EvalCorpus:
    """What :func:`hybridctx.routing.answering.answer_question` needs of a ``HybridContext``, over one eval set.

    ``route`` asks the router with the scope's token count; ``retrieve`` packs
    with the eval method and renders its ranges as ``retrieve`` renders spans.
    """

    def __init__(self, eval_set: EvalSet, method: Any, router: Any, counter: TokenCounter,
                 doc_tokens: Mapping[str, int], cut: Any = None) -> None:
        self.eval_set, self.method, self.router, self.counter = eval_set, method, router, counter
        self.doc_tokens, self.cut = doc_tokens, cut
        self.store = _Store(eval_set.docs)

    def full_tokens(self, doc_ids: Sequence[str] | None) -> int:
        return sum(self.doc_tokens[d] for d in (doc_ids or self.eval_set.docs))

    def route(self, query: str, *, doc_ids: Sequence[str] | None = None, budget: int | None = None,
              **_: Any) -> Any:
        return self.router.decide(query, self.full_tokens(doc_ids), budget)

    def retrieve(self, query: str, budget: int, *, tokenizer: str = "", doc_ids: Sequence[str] | None = None,
                 **_: Any) -> PackedContext:
        from hybridctx.packing.packer import render

        docs = self.eval_set.docs
        ranges = self.method.retrieve(query, list(doc_ids) if doc_ids else None, budget)
        spans = tuple(Span(d, s, e, 1.0, self.counter.count(docs[d][s:e]), docs[d][s:e]) for d, s, e in ranges)
        context = render(spans)
        return PackedContext(query, budget, self.counter.name, self.counter.count(context), context, spans)


def evaluate_answers(
    eval_sets: Mapping[str, EvalSet],
    llm: MeteredLLM,
    policies: Sequence[Policy],
    *,
    router: Any,
    max_tokens: int = 64,
    profiles_file: str | None = None,
    show_progress: bool | None = None,
) -> AnswerReport:
    """Answer every question of every set under every policy, and judge the answers.

    Args:
        eval_sets: ``name -> EvalSet`` (loaded with ``answers=True``).
        llm: the backend, through the answer cache.
        policies: the policies, in table order; their names must differ.
        router: the :class:`~hybridctx.routing.router.Router` (profile and limits):
            it prices every call, routes the ``router`` policy and bounds
            what ``always-full`` may send.
        max_tokens: the longest answer.
        profiles_file: extra profiles, for the router policy's ``answer_question``.
        show_progress: tqdm bar over questions (``None``: on a terminal).
    """
    from tqdm.auto import tqdm

    from hybridctx.eval.router_eval import _LazyTruncation, full_capacity
    from hybridctx.routing.profiles import profile_counter
    from hybridctx.packing.tokens import count_many

    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        from hybridctx.errors import ConfigError

        raise ConfigError(f"policy names must differ, got {names}")
    counter = profile_counter(router.profile)
    capacity = full_capacity(router)
    rows: list[AnswerRow] = []
    for set_name, eval_set in eval_sets.items():
        docs = eval_set.docs
        doc_tokens = dict(zip(docs, count_many(counter, list(docs.values()))))
        cut = _LazyTruncation(docs, counter.name)
        prepared: set[int] = set()
        for policy in policies:
            if policy.method is not None and id(policy.method) not in prepared:
                policy.method.prepare(docs)
                prepared.add(id(policy.method))
            bar = tqdm(eval_set.questions, desc=f"{policy.name} on {set_name}", unit="q",
                       disable=None if show_progress is None else not show_progress)
            for item in bar:
                corpus = EvalCorpus(eval_set, policy.method, router, counter, doc_tokens, cut)
                rows.append(_answer(item, set_name, policy, corpus, llm, router, capacity, max_tokens,
                                    profiles_file))
    return AnswerReport(model=llm.name, profile=router.profile.name, policies=tuple(names),
                        datasets=tuple(eval_sets), rows=tuple(rows), max_tokens=max_tokens)


def _answer(item: QAItem, set_name: str, policy: Policy, corpus: EvalCorpus, llm: MeteredLLM, router: Any,
            capacity: int, max_tokens: int, profiles_file: str | None) -> AnswerRow:
    from hybridctx.routing.answering import answer_question, full_context
    from hybridctx.llms.prompts import build_messages, says_unanswerable

    query = question_text(item)
    doc_ids = corpus.eval_set.doc_ids_for(item)
    llm.take_calls()
    escalated, first_refused = False, None
    try:
        if policy.kind == "router":
            limits = replace(router.limits, answer_tokens=max_tokens)
            answer = answer_question(corpus, query, llm, profile=router.profile.name, limits=limits, doc_ids=doc_ids,
                                     budget=policy.budget, max_tokens=max_tokens, profiles_file=profiles_file)
            text, mode, packed, escalated = answer.text, answer.mode, answer.context, answer.escalated
            first_refused = escalated or says_unanswerable(text)
        else:
            if policy.kind == "full":
                if corpus.full_tokens(doc_ids) > capacity:
                    cut_ranges = corpus.cut.get().retrieve("", list(doc_ids) if doc_ids else None, capacity)
                    corpus.store.keep = {d: e for d, _, e in cut_ranges}
                packed, mode = full_context(corpus, corpus.counter.name, doc_ids), "full"
            else:
                packed, mode = corpus.retrieve(query, int(policy.budget or 0), doc_ids=doc_ids), "retrieval"
            completion = llm.generate(build_messages(query, packed, mode=mode), max_tokens=max_tokens)
            text = completion.text.strip()
        error = None
    except ContextLengthError as exc:  # the prompt is over the model's window: no answer, counted as wrong
        text, mode, packed, error = "", policy.kind if policy.kind != "router" else "full", None, str(exc)
    calls = llm.take_calls()
    refused = error is None and says_unanswerable(text)
    score = score_answer(text, item.answers, refused=refused or error is not None, options=item.options,
                         answer_label=item.answer_label, unanswerable=item.unanswerable and error is None)
    recall = None
    if packed is not None and item.has_context_gold:
        ranges = [(s.doc_id, s.start, s.end) for s in packed.spans]
        recall = score_question(item, ranges, corpus.eval_set.docs)
    prompt = sum(c.prompt_tokens for c in calls)
    completion_tokens = sum(c.completion_tokens for c in calls)
    seconds = sum(c.seconds for c in calls)
    return AnswerRow(
        dataset=set_name, id=item.id, policy=policy.name, mode=mode, escalated=escalated, answer=text,
        refused=refused, first_refused=bool(refused if first_refused is None else first_refused),
        em=score.em, f1=score.f1, choice_correct=score.choice_correct, chosen=score.chosen, recall=recall,
        context_tokens=packed.tokens if packed is not None else 0, prompt_tokens=prompt,
        completion_tokens=completion_tokens, calls=len(calls), cached_calls=sum(c.cached for c in calls),
        seconds=seconds, usd=spent_usd(router.profile, prompt, completion_tokens, seconds), error=error,
        spans=len(packed.spans) if packed is not None else 0,
    )


def spent_usd(profile: ModelProfile, prompt_tokens: int, completion_tokens: int, seconds: float) -> float:
    """Tokens at the profile's prices, plus the seconds at its hourly hardware rate."""
    return (prompt_tokens * profile.usd_per_m_input / 1e6 + completion_tokens * profile.usd_per_m_output / 1e6
            + seconds * profile.usd_per_gpu_hour / 3600.0)


def policies_for_route(method: RetrievalMethod, router: Any, budget: int | None) -> list[Policy]:
    """The three policies of ``hybridctx eval route``: the router (Self-Route), always-full, always-retrieve."""
    from hybridctx.eval.router_eval import base_budget

    return [Policy("router", "router", method, budget), Policy("always-full", "full"),
            Policy("always-retrieve", "retrieval", method, base_budget(router, budget))]


def policies_for_methods(methods: Sequence[RetrievalMethod], budgets: Sequence[int]) -> list[Policy]:
    """One retrieval policy per method and budget (``hybridctx eval qa --llm``)."""
    return [Policy(f"{m.name}@{b}", "retrieval", m, b) for m in methods for b in budgets]

