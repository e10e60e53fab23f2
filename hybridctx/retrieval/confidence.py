"""How sure retrieval is of its own hits, without an LLM: a budget per question, or full context.

Why: the router picks a retrieval budget from the corpus size alone, so a
question whose evidence stands out gets as many tokens as one where nothing
does. Retrieval itself says which is which, before any model is called:

- **peak**: how far the best fused score stands above the next tier
  (``1 - mean(fused[k:2k]) / fused[0]``); with reciprocal rank fusion a hit
  ranked high by both searches scores about twice a hit only one found;
- **agreement**: the share of the dense search's top ``k`` landmarks that the
  lexical search's top ``k`` also found (within two landmarks of each other);
- **coverage**: the share of the question's content words (words of three or
  more letters that are not stop words; pairs of Han characters) present in
  the text packed at the smallest budget.

Their weighted mean is the confidence in ``[0, 1]``. :func:`adapt` turns it
into a budget between ``adaptive_low`` and ``adaptive_high`` times the
router's (more tokens when nothing stands out, fewer when a few spans
dominate), and with ``escalate_below`` sends full context instead when the
confidence is that low and full context meets the limits. Opt-in:
``RouteLimits(adaptive_budget=True)`` (``--adaptive-budget``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.routing.router import RouteDecision, Router

__all__ = ["Confidence", "adapt", "budget_range", "content_words", "measure"]

#: Weights of peak, agreement and coverage in the confidence.
WEIGHTS = (0.35, 0.35, 0.30)
_TOP = 10
_NEAR_ROWS = 2
_WORD = re.compile(r"[^\W\d_]{3,}|\d{2,}", re.UNICODE)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_STOP = frozenset("""
the and for are but not you all any can had her was one our out has him his how its may new now old see
two way who did get let say she too use that with have this will your from they know want been good much
some time very when come here just like long make many more only over such take than them well were what
which where while whom whose why would could should there their these those then into onto upon about
after before other does doing done being also each every both few most own same again further once
during through between under above below off down again ever said says tell told give given name named
""".split())


@dataclass(frozen=True)
class Confidence:
    """Retrieval's confidence in its hits for one question.

    Attributes:
        peak: how far the best fused score stands above the next tier, in [0, 1].
        agreement: share of dense top hits the lexical search also found, in [0, 1].
        coverage: share of the question's content words in the packed text, in [0, 1].
        score: the weighted mean (:data:`WEIGHTS`).
        words: the content words looked for.
    """

    peak: float
    agreement: float
    coverage: float
    score: float
    words: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"peak": round(self.peak, 3), "agreement": round(self.agreement, 3),
                "coverage": round(self.coverage, 3), "score": round(self.score, 3)}


def content_words(query: str) -> tuple[str, ...]:
    """The question's content words, lower-cased, in order, without repeats."""
    words = [w for w in _WORD.findall(query.lower()) if w not in _STOP and not _HAN.fullmatch(w)]
    for run in _HAN.findall(query):
        words += [run[i:i + 2] for i in range(max(1, len(run) - 1))]
    return tuple(dict.fromkeys(words))


def measure(query: str, signals: Mapping[str, Any], texts: Iterable[str], *, top: int = _TOP) -> Confidence:
    """The confidence of one question's retrieval.

    Args:
        query: the question.
        signals: what ``Retriever.candidates(..., signals=...)`` filled in
            (``dense`` and ``lexical`` row ids, ``fused`` scores, best first).
        texts: the text packed at the smallest budget considered.
        top: how many top hits peak and agreement look at.
    """
    fused = np.asarray(signals.get("fused", ()), dtype=np.float64)
    if len(fused) == 0 or fused[0] <= 0:
        peak = 0.0
    else:
        tier = fused[top:2 * top] if len(fused) > top else fused[-1:]
        peak = float(np.clip(1.0 - tier.mean() / fused[0], 0.0, 1.0))
    dense = np.asarray(signals.get("dense", ()), dtype=np.int64)[:top]
    lexical = np.asarray(signals.get("lexical", ()), dtype=np.int64)[:top]
    if len(dense) and len(lexical):
        near = np.abs(dense[:, None] - lexical[None, :]).min(axis=1) <= _NEAR_ROWS
        agreement = float(near.mean())
    else:  # one search alone: nothing to agree with
        agreement = 0.0
    words = content_words(query)
    haystack = "\n".join(texts).lower()
    coverage = sum(w in haystack for w in words) / len(words) if words else 1.0
    score = WEIGHTS[0] * peak + WEIGHTS[1] * agreement + WEIGHTS[2] * coverage
    return Confidence(peak, agreement, coverage, float(score), words)


def budget_range(router: Router, budget: int) -> tuple[int, int]:
    """``(lo, hi)``: the budgets :func:`adapt` chooses between around the router's ``budget``."""
    lim = router.limits
    top = router.max_budget()
    lo = min(max(lim.min_budget, round(budget * lim.adaptive_low)), top)
    hi = min(max(lo, round(budget * lim.adaptive_high)), top)
    return lo, hi


def adapt(router: Router, decision: RouteDecision, confidence: Confidence, full_tokens: int) -> RouteDecision:
    """The router's retrieval decision at the budget its confidence calls for, or full context.

    ``budget = hi - score * (hi - lo)`` in steps of 64 tokens (:func:`budget_range`);
    below ``escalate_below`` the question goes to full context when that meets
    every limit. A full-context decision is returned unchanged.
    """
    lim = router.limits
    if decision.mode != "retrieval" or not decision.within_limits:
        return decision
    said = (f"retrieval confidence {confidence.score:.2f} (peak {confidence.peak:.2f}, agreement "
            f"{confidence.agreement:.2f}, coverage {confidence.coverage:.2f})")
    if lim.escalate_below is not None and confidence.score < lim.escalate_below:
        step = router.escalate(decision, full_tokens)
        if step is not None and step.mode == "full":
            return router.with_reason(step, f"{said} is below escalate_below {lim.escalate_below:g}; "
                                            + step.reason.split("; ", 1)[-1])
    lo, hi = budget_range(router, decision.budget)
    wanted = hi - confidence.score * (hi - lo)
    wanted = int(min(hi, max(lo, round(wanted / 64) * 64)))
    if wanted == decision.budget:
        return router.with_reason(decision, f"{decision.reason}; {said} keeps the budget")
    return router.rebudget(decision, wanted, full_tokens, f"{said} picks {wanted:,} tokens in {lo:,}..{hi:,}")
