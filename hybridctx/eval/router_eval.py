"""The router measured on QA sets: what it sends, what that costs, and what evidence it keeps.

Why: the router (``hybridctx/routing/router.py``) chooses between sending everything
and retrieving, from cost estimates alone. Whether its choices are any good
shows only against the two fixed policies on real questions:

- *always-full*: the whole scope (the question's document; the corpus for
  hotpotqa) when it fits the window and memory, recall 1 by construction;
  otherwise the first tokens that fit (what a client that truncates sends),
  scored like truncation;
- *always-retrieve*: hybridctx retrieval at the asked budget;
- *router*: :meth:`Router.decide` per question, then full context or
  retrieval at the budget it chose.

Each policy's context is scored by the DESIGN.md rules (the qa scorer), its
tokens counted in the profile's tokenizer, and its cost and latency estimated
by the profile (:meth:`Router.estimate`). The target of the issue is
``router recall >= 95% of always-full's`` for ``<= 25% of its tokens``.
Rendering (tables, JSON, plot) lives in :mod:`hybridctx.eval.router_report`.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from hybridctx.errors import ConfigError
from hybridctx.eval.datasets import EvalSet
from hybridctx.eval.scoring import PackedRange, check_budget, mean, score_question

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.eval.peers import RetrievalMethod
    from hybridctx.routing.router import Router
    from hybridctx.packing.tokens import TokenCounter

__all__ = ["POLICIES", "Outcome", "PolicyTotals", "RouteReport", "RouteRow", "TargetCheck", "evaluate_routes",
           "pick_sessions"]

logger = logging.getLogger(__name__)

POLICIES = ("router", "always-full", "always-retrieve")


@dataclass(frozen=True)
class Outcome:
    """What one policy sent for one question.

    Attributes:
        mode: ``full`` or ``retrieval``.
        tokens: context tokens sent (profile tokenizer; prompt and answer not included).
        recall: the DESIGN.md score of what was sent.
        usd: estimated money of the request (context + prompt + answer).
        latency_s: estimated seconds to the end of the answer.
        budget: the retrieval budget (0 for full context).
    """

    mode: str
    tokens: int
    recall: float
    usd: float
    latency_s: float
    budget: int = 0


@dataclass(frozen=True)
class RouteRow:
    """One question under the three policies.

    Attributes:
        dataset: the dataset.
        id: the question id.
        full_tokens: tokens of everything in the question's scope.
        full_fits: whether all of it fits the window and memory.
        intent: whole-corpus intent the router saw, or ``None``.
        within_limits: whether the router's choice met every limit.
        reason: the router's sentence.
        router: what the router's choice sent.
        full: what always-full sent.
        retrieve: what always-retrieve sent.
    """

    dataset: str
    id: str
    full_tokens: int
    full_fits: bool
    intent: str | None
    within_limits: bool
    reason: str
    router: Outcome
    full: Outcome
    retrieve: Outcome

    def outcome(self, policy: str) -> Outcome:
        """The outcome of a policy named in :data:`POLICIES`."""
        return {"router": self.router, "always-full": self.full, "always-retrieve": self.retrieve}[policy]


@dataclass(frozen=True)
class PolicyTotals:
    """One policy over a set of questions.

    Attributes:
        policy: a name of :data:`POLICIES`.
        questions: how many.
        recall: mean recall.
        tokens: total context tokens sent.
        usd: total estimated money.
        latency_s: mean estimated latency.
        latency_p50_s: median estimated latency.
        full_share: share of questions answered with full context.
    """

    policy: str
    questions: int
    recall: float
    tokens: int
    usd: float
    latency_s: float
    latency_p50_s: float
    full_share: float


@dataclass(frozen=True)
class TargetCheck:
    """The router against always-full: recall kept and tokens spent, as ratios."""

    recall_ratio: float
    token_ratio: float
    min_recall_ratio: float
    max_token_ratio: float

    @property
    def met(self) -> bool:
        return self.recall_ratio >= self.min_recall_ratio and self.token_ratio <= self.max_token_ratio


@dataclass(frozen=True)
class RouteReport:
    """Everything :func:`evaluate_routes` measured, with totals and the target check.

    Attributes:
        profile: the model profile's name.
        window: its window in tokens.
        tokenizer: the tokenizer tokens are counted in.
        limits: the router's limits as a dict.
        budget: the always-retrieve budget. The router weighs it too when it
            was asked for; otherwise the router's own grows with the scope
            (``RouteLimits.retrieval_share``), and each row keeps the budget used.
        datasets: dataset names, in order.
        rows: one row per question.
        min_recall_ratio: the target's recall share of always-full.
        max_token_ratio: the target's token share of always-full.
        session: questions per session when measured as a session workload
            (always-full then is cached always-full), else ``None``.
    """

    profile: str
    window: int
    tokenizer: str
    limits: Mapping[str, Any]
    budget: int
    datasets: tuple[str, ...]
    rows: tuple[RouteRow, ...]
    min_recall_ratio: float = 0.95
    max_token_ratio: float = 0.15
    session: int | None = None

    def _rows(self, dataset: str | None, fits_only: bool) -> list[RouteRow]:
        return [r for r in self.rows
                if (dataset is None or r.dataset == dataset) and (r.full_fits or not fits_only)]

    def totals(self, dataset: str | None = None, *, fits_only: bool = False) -> dict[str, PolicyTotals]:
        """Totals per policy over one dataset, or over every question (``None``).

        With ``fits_only``, only the questions whose whole scope fits the
        window: there always-full's recall is 1 and the comparison is clean.
        """
        rows = self._rows(dataset, fits_only)
        out = {}
        for policy in POLICIES:
            outs = [r.outcome(policy) for r in rows]
            latencies = [o.latency_s for o in outs]
            out[policy] = PolicyTotals(
                policy=policy,
                questions=len(outs),
                recall=mean(o.recall for o in outs),
                tokens=sum(o.tokens for o in outs),
                usd=sum(o.usd for o in outs),
                latency_s=mean(latencies),
                latency_p50_s=statistics.median(latencies) if latencies else math.nan,
                full_share=mean(float(o.mode == "full") for o in outs),
            )
        return out

    def target(self, dataset: str | None = None, *, fits_only: bool = False) -> TargetCheck:
        """The router's recall and tokens as shares of always-full's (pooled over the questions)."""
        t = self.totals(dataset, fits_only=fits_only)
        full, router = t["always-full"], t["router"]
        recall_ratio = router.recall / full.recall if full.recall else math.nan
        token_ratio = router.tokens / full.tokens if full.tokens else math.nan
        return TargetCheck(recall_ratio, token_ratio, self.min_recall_ratio, self.max_token_ratio)

    def to_markdown(self) -> str:
        """Tables per dataset and overall, and the target verdict."""
        from hybridctx.eval.router_report import report_markdown

        return report_markdown(self)

    def to_json(self) -> str:
        """Settings, totals, target checks and every row as JSON (``nan`` as ``null``)."""
        from hybridctx.eval.router_report import report_json

        return report_json(self)

    def write(self, out_dir: Any, *, stem: str = "route") -> str:
        """Write ``{stem}.md``, ``{stem}.json`` and ``{stem}.png`` into ``out_dir``; return the table."""
        from hybridctx.eval.router_report import write_report

        return write_report(self, out_dir, stem)


def evaluate_routes(
    eval_sets: Mapping[str, EvalSet],
    router: Router,
    method: RetrievalMethod,
    *,
    budget: int | None = None,
    counter: TokenCounter | None = None,
    min_recall_ratio: float = 0.95,
    max_token_ratio: float = 0.15,
    show_progress: bool | None = None,
    session: int | None = None,
) -> RouteReport:
    """Route every question of every set and score the three policies.

    Args:
        eval_sets: ``name -> EvalSet``.
        router: the router (its profile and limits).
        method: the retrieval method; it must count budgets in ``counter``'s tokenizer.
        budget: retrieval budget asked of the router and used by always-retrieve
            (``None``: always-retrieve uses ``default_budget`` and the router
            picks its own per question).
        counter: the profile's token counter (default: :func:`profile_counter`).
        min_recall_ratio: the target's share of always-full's recall.
        max_token_ratio: the target's share of always-full's tokens.
        show_progress: tqdm bar over questions (``None``: on a terminal).
        session: a session workload: the questions of each scope come in runs
            of this many, all within the profile's cache TTL. The router is told
            how many of the run are left (``expected_questions``) and whether it
            sent the scope in full before (``warm``); full context is billed
            cold on its first send and warm after (always-full: the first
            question of each scope cold, the rest warm). ``None``: every
            request cold, as before.

    Raises:
        BudgetError: retrieval packed more than its budget.
        ConfigError: the method counts tokens in another tokenizer.
    """
    from dataclasses import asdict

    from tqdm.auto import tqdm

    from hybridctx.routing.profiles import profile_counter
    from hybridctx.packing.tokens import count_many

    counter = counter or profile_counter(router.profile)
    method_tokenizer = getattr(method, "tokenizer", counter.name)
    if method_tokenizer != counter.name:
        raise ConfigError(f"the retrieval method counts budgets in {method_tokenizer!r} but profile "
                          f"{router.profile.name!r} counts in {counter.name!r}; build it with that tokenizer")
    base = base_budget(router, budget)
    capacity = full_capacity(router)
    rows: list[RouteRow] = []
    for set_name, eval_set in eval_sets.items():
        method.prepare(eval_set.docs)
        docs = eval_set.docs
        doc_tokens = dict(zip(docs, count_many(counter, list(docs.values()))))
        cut = _LazyTruncation(docs, counter.name)
        bar = tqdm(eval_set.questions, desc=f"route {router.profile.name} on {set_name}", unit="q",
                   disable=None if show_progress is None else not show_progress)
        seen: dict[tuple[str, ...], int] = {}
        router_sent: set[tuple[str, ...]] = set()
        in_scope = Counter(tuple(eval_set.doc_ids_for(q) or docs) for q in eval_set.questions)
        for item in bar:
            doc_ids = eval_set.doc_ids_for(item)
            scope = list(docs) if doc_ids is None else doc_ids
            key = tuple(doc_ids or docs)
            full_tokens = sum(doc_tokens[d] for d in scope)
            nth = seen.get(key, 0)
            seen[key] = nth + 1
            if session:
                run_start = nth - nth % session  # this run: up to `session` questions, fewer at the scope's end
                left = min(session, in_scope[key] - run_start) - nth % session
                decision = router.decide(item.question, full_tokens, budget, warm=key in router_sent,
                                         expected_questions=max(1, left))
            else:
                decision = router.decide(item.question, full_tokens, budget)
            if router.limits.adaptive_budget and decision.mode == "retrieval":
                decision = adapt_decision(router, method, item.question, doc_ids, docs, decision, full_tokens)
            fits = full_tokens <= capacity

            # sent() is called only within this iteration, so reading docs and item late is what is meant.
            def sent(mode: str, ranges: Sequence[PackedRange], limit: int, b: int = 0, warm: bool = False) -> Outcome:
                tokens = check_budget(ranges, docs, limit, counter, method=f"{mode} context")  # noqa: B023
                est = router.cache_estimates(tokens)["warm" if warm else "cold"] if session else router.estimate(tokens)
                return Outcome(mode, tokens, score_question(item, ranges, docs),  # noqa: B023
                               est.usd, est.latency_s, b)

            if fits:
                ranges = [(d, 0, len(docs[d])) for d in scope if docs[d]]
                full = sent("full", ranges, full_tokens, warm=nth > 0)
            else:  # what a client that cuts at the window sends
                ranges = cut.get().retrieve("", doc_ids, capacity)
                full = sent("full", ranges, capacity, warm=nth > 0)
            retrieve = sent("retrieval", method.retrieve(item.question, doc_ids, base), base, base)
            if decision.mode == "full":
                chosen = sent("full", ranges, full_tokens if fits else capacity, warm=key in router_sent)
                router_sent.add(key)
            elif decision.budget == base:
                chosen = retrieve
            else:  # the limits made the router pick a smaller budget
                b = decision.budget
                chosen = sent("retrieval", method.retrieve(item.question, doc_ids, b), b, b)
            rows.append(RouteRow(set_name, item.id, full_tokens, fits, decision.intent, decision.within_limits,
                                 decision.reason, chosen, full, retrieve))
        unfit = sum(1 for r in rows if r.dataset == set_name and not r.full_fits)
        if unfit:
            logger.info("%s: full context exceeds the %d-token capacity of %s for %d questions; always-full "
                        "sends the first %d tokens for them", set_name, capacity, router.profile.name, unfit, capacity)
    return RouteReport(
        profile=router.profile.name, window=router.profile.window, tokenizer=counter.name,
        limits=asdict(router.limits), budget=base, datasets=tuple(eval_sets), rows=tuple(rows),
        min_recall_ratio=min_recall_ratio, max_token_ratio=max_token_ratio, session=session,
    )


def adapt_decision(router: Router, method: Any, query: str, doc_ids: Sequence[str] | None,
                   docs: Mapping[str, str], decision: Any, full_tokens: int) -> Any:
    """The router's decision at the budget retrieval's confidence picks (:mod:`hybridctx.retrieval.confidence`)."""
    from hybridctx.retrieval.confidence import adapt, budget_range, measure

    lo, hi = budget_range(router, decision.budget)
    signals = method.signals(query, doc_ids, hi)
    texts = [docs[d][a:b] for d, a, b in method.retrieve(query, doc_ids, lo)]
    return adapt(router, decision, measure(query, signals, texts), full_tokens)


def pick_sessions(eval_set: EvalSet, per_scope: int, limit: int | None, seed: int = 0) -> EvalSet:
    """A session workload: runs of ``per_scope`` questions on one scope, up to ``limit`` questions.

    Scopes are taken from the most questions down (ties in a seeded random
    order), ``per_scope`` questions of each (in file order), or all of a scope
    that has fewer but at least half as many (L-Eval has at most 8 scorable
    questions per document); a corpus-wide set (one scope) gives ``limit``
    questions in runs of ``per_scope``.
    """
    import random
    from dataclasses import replace

    rng = random.Random(seed)
    groups: dict[str, list[Any]] = {}
    for item in eval_set.questions:
        groups.setdefault("" if eval_set.scope == "corpus" else item.doc_id, []).append(item)
    want = limit or len(eval_set.questions)
    if eval_set.scope == "corpus":
        pool = groups.get("", [])
        chosen = sorted(rng.sample(range(len(pool)), min(want, len(pool))))
        return replace(eval_set, questions=tuple(pool[i] for i in chosen))
    keys = [k for k, items in groups.items() if len(items) >= max(2, (per_scope + 1) // 2)]
    rng.shuffle(keys)
    keys.sort(key=lambda k: -min(len(groups[k]), per_scope))
    picked: list[Any] = []
    for key in keys:
        items = groups[key]
        take = min(per_scope, len(items))
        if len(picked) + take > want:
            break
        picked += [items[i] for i in sorted(rng.sample(range(len(items)), take))]
    needed = {q.doc_id for q in picked} | {d for q in picked for d in q.evidence_doc_ids}
    return replace(eval_set, questions=tuple(picked), docs={d: t for d, t in eval_set.docs.items() if d in needed})


def base_budget(router: Router, asked: int | None) -> int:
    """Always-retrieve's budget: asked (or ``default_budget``), within min/max and the window."""
    lim = router.limits
    budget = max(lim.default_budget if asked is None else asked, lim.min_budget)
    if lim.max_budget is not None:
        budget = min(budget, lim.max_budget)
    return max(1, min(budget, full_capacity(router)))


def full_capacity(router: Router) -> int:
    """Most context tokens one request can carry: the window (and memory) less prompt and answer."""
    p, lim = router.profile, router.limits
    reserved = lim.prompt_tokens + lim.answer_tokens
    capacity = p.window - reserved
    usable = p.usable_memory_gib
    if usable is not None and p.kv_bytes_per_token:
        capacity = min(capacity, int(usable * 2**30 // p.kv_bytes_per_token) - reserved)
    return max(0, capacity)


class _LazyTruncation:
    """The truncation peer, prepared only when some scope does not fit (it counts every document)."""

    def __init__(self, docs: Mapping[str, str], tokenizer: str) -> None:
        self.docs, self.tokenizer, self._method = docs, tokenizer, None

    def get(self) -> Any:
        if self._method is None:
            from hybridctx.eval.peers import Truncation

            self._method = Truncation(tokenizer=self.tokenizer)
            self._method.prepare(self.docs)
        return self._method
