"""Routing by cost: full context or retrieval, per question, and why.

Why: sending the whole corpus is faithful but its cost, latency and KV memory
grow with every token and the window still ends; retrieval is cheap but cannot
answer a question about the whole corpus from a few spans. The router puts
numbers on both for one model profile, applies the user's limits, and says
which mode it picks in a sentence with those numbers. After a retrieval answer
that says it cannot answer, `Router.escalate` takes the Self-Route step: full
context if it fits the limits, else retrieval at a larger budget.

Estimates, for ``n`` input tokens and ``m`` output tokens (`estimate`)::

    usd       = n * usd_per_m_input / 1e6 + m * usd_per_m_output / 1e6
                + (prefill_s + decode_s) * usd_per_gpu_hour / 3600
    prefill_s = (2 * params * n + 2 * layers * n**2 * hidden) / (peak_flops * flops_efficiency)
                or, when prefill_tps is given, n / prefill_tps * (1 + layers * n * hidden / params)
    decode_s  = m / decode_tps
                or m * (weights_bytes + kv_bytes_per_token * n) / (memory_bandwidth * bandwidth_efficiency)
    latency_s = api_latency_s + prefill_s + decode_s
    kv_gib    = kv_bytes_per_token * (n + m) / 2**30

``2 * params * n`` is the matrix-multiply work of a forward pass;
``2 * layers * n**2 * hidden`` is attention: Q·Kᵀ and A·V cost ``2 * n**2 * hidden``
each per layer, and the causal mask halves their sum. With a measured
``prefill_tps`` (a short-prompt figure), the same ratio of attention to linear
work, ``layers * n * hidden / params``, stretches it at long inputs. Decode
reads the weights and the whole KV cache once per generated token, so it is
bound by memory bandwidth. Retrieval's own search time (milliseconds) is not
counted.

Prompt caching (issue 14): of the ``n`` input tokens, ``c`` may be a prefix read
from the provider's cache (``cached_tokens``) and ``w`` a prefix written to it
(``cache_write_tokens``)::

    usd_tokens = ((n - c - w) + w * cache_write_multiplier) * usd_per_m_input / 1e6
                 + c * usd_per_m_cached_input / 1e6 + m * usd_per_m_output / 1e6
    prefill_s  = prefill(n) - prefill(c)   when the profile skips a cached prefill
                                           (vLLM/SGLang), else prefill(n)

``prefill(n) - prefill(c)`` is exactly the work of tokens ``c..n``, each still
attending to the cached prefix. Full context has a *cold* estimate (the first
send: the prefix is written) and a *warm* one (a send within the TTL of the
last: the prefix is read); the router uses the warm one when the scope is warm
(:mod:`hybridctx.routing.session_ledger`) and, when the user expects ``N`` questions on
the scope within the TTL, the *amortised* one, ``(cold + (N - 1) * warm) / N``.
A warm or amortised full context that costs at most ``cached_full_usd_ratio``
times retrieval counts as cheap, like a small corpus.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Mapping

from hybridctx.errors import ConfigError
from hybridctx.routing.profiles import ModelProfile, get_profile
from hybridctx.retrieval.query_hints import corpus_intent
from hybridctx.config.settings import reject_unknown_keys

__all__ = [
    "CacheApplies",
    "Estimate",
    "RouteDecision",
    "RouteLimits",
    "RouteMode",
    "Router",
    "amortised",
    "detect_intent",
    "estimate",
]

logger = logging.getLogger(__name__)

RouteMode = Literal["full", "retrieval"]
#: Which full-context estimate the router used: the first send, a warm prefix, or the mean over a session.
CacheApplies = Literal["cold", "warm", "amortised"]
_GIB = 2**30

def detect_intent(query: str) -> str | None:
    """Label of a whole-corpus intent in the question, or ``None``: ``summarise``,
    ``list-all``, ``compare`` or ``whole-corpus`` (see
    :func:`hybridctx.retrieval.query_hints.corpus_intent`, which owns the rules)."""
    return corpus_intent(query)


@dataclass(frozen=True)
class Estimate:
    """What one request would cost on one profile.

    Attributes:
        tokens: input plus output tokens (what must fit the window).
        usd: money for the request (token prices plus GPU time).
        latency_s: seconds to the end of the answer.
        prefill_s: seconds spent reading the input.
        decode_s: seconds spent generating the answer.
        kv_gib: KV cache at the end of the answer, in GiB (0 when the profile
            does not know its KV size, as for hosted APIs).
        fits_window: ``tokens`` is within the model window.
        fits_memory: weights, overhead and KV cache fit the profile's memory.
        input_tokens: tokens sent (context, prompt and question).
        output_tokens: tokens generated.
        cached_tokens: input tokens read from the prompt cache (a warm prefix).
        cache_write_tokens: input tokens written to the prompt cache (a cold
            prefix that later sends may read).
    """

    tokens: int
    usd: float
    latency_s: float
    prefill_s: float
    decode_s: float
    kv_gib: float
    fits_window: bool
    fits_memory: bool
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, bool) and value < 0:
                raise ConfigError(f"estimate field {f.name} is {value}; it must be >= 0")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; money to 1e-6 USD, seconds to ms, GiB to 1e-4."""
        return {
            "tokens": self.tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usd": round(self.usd, 6),
            "latency_s": round(self.latency_s, 3),
            "prefill_s": round(self.prefill_s, 3),
            "decode_s": round(self.decode_s, 3),
            "kv_gib": round(self.kv_gib, 4),
            "fits_window": self.fits_window,
            "fits_memory": self.fits_memory,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }

    def _summary(self) -> str:
        return (
            f"tokens={self.tokens} usd={self.usd:.6f} latency_s={self.latency_s:.3f} "
            f"kv_gib={self.kv_gib:.4f} fits_window={self.fits_window} fits_memory={self.fits_memory}"
        )


def estimate(
    profile: ModelProfile,
    input_tokens: int,
    output_tokens: int,
    *,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Estimate:
    """Cost, latency and KV memory of one request (formulas in the module docstring).

    Args:
        profile: the model.
        input_tokens: ``n``, every token sent.
        output_tokens: ``m``, tokens generated.
        cached_tokens: ``c``, the prefix of the input read from the prompt cache.
        cache_write_tokens: ``w``, the prefix of the input written to the cache.
    """
    if min(input_tokens, output_tokens, cached_tokens, cache_write_tokens) < 0:
        raise ConfigError(f"token counts must be >= 0, got input {input_tokens}, output {output_tokens}, "
                          f"cached {cached_tokens} and cache writes {cache_write_tokens}")
    if cached_tokens + cache_write_tokens > input_tokens:
        raise ConfigError(f"cached ({cached_tokens}) and cache-write ({cache_write_tokens}) tokens exceed the "
                          f"{input_tokens} input tokens")
    n, m, c, w = input_tokens, output_tokens, cached_tokens, cache_write_tokens
    p = profile
    prefill_s = _prefill_s(p, n)
    if c and p.cache_skips_prefill:
        prefill_s = max(0.0, prefill_s - _prefill_s(p, c))
    kv_per_token = p.kv_bytes_per_token or 0
    if p.decode_tps is not None:
        decode_s = m / p.decode_tps
    else:
        bytes_per_step = _derived(p.weights_gib, "weights_gib", p) * _GIB + kv_per_token * n
        decode_s = m * bytes_per_step / (_derived(p.memory_bandwidth, "memory_bandwidth", p) * p.bandwidth_efficiency)
    cached_price = p.usd_per_m_input if p.usd_per_m_cached_input is None else p.usd_per_m_cached_input
    usd = (
        (n - c - w + w * p.cache_write_multiplier) * p.usd_per_m_input / 1e6
        + c * cached_price / 1e6
        + m * p.usd_per_m_output / 1e6
        + (prefill_s + decode_s) * p.usd_per_gpu_hour / 3600.0
    )
    tokens = n + m
    kv_gib = kv_per_token * tokens / _GIB
    usable = p.usable_memory_gib
    return Estimate(
        tokens=tokens,
        usd=usd,
        latency_s=p.api_latency_s + prefill_s + decode_s,
        prefill_s=prefill_s,
        decode_s=decode_s,
        kv_gib=kv_gib,
        fits_window=tokens <= p.window,
        fits_memory=usable is None or kv_gib <= usable,
        input_tokens=n,
        output_tokens=m,
        cached_tokens=c,
        cache_write_tokens=w,
    )


def _prefill_s(p: ModelProfile, n: int) -> float:
    """Seconds to prefill ``n`` tokens from nothing."""
    params, layers, hidden_size = p.params, p.layers, p.hidden_size
    if params is not None and layers is not None and hidden_size is not None:  # p.has_attention_shape
        linear_flops = 2.0 * params * n
        attention_flops = 2.0 * layers * n * n * hidden_size
    else:
        linear_flops = attention_flops = 0.0
    if p.prefill_tps is not None:
        prefill_s = n / p.prefill_tps
        if linear_flops:
            prefill_s *= 1.0 + attention_flops / linear_flops
        return prefill_s
    return ((2.0 * _derived(params, "params", p) * n + attention_flops)
            / (_derived(p.peak_flops, "peak_flops", p) * p.flops_efficiency))


def _derived(value: float | None, field: str, p: ModelProfile) -> float:
    """A field that ``ModelProfile`` validation guarantees on this path: it rejects a profile that gives
    neither a speed nor the numbers to derive it, so ``None`` here is a bug, named rather than a TypeError."""
    if value is None:
        raise ConfigError(f"model profile '{p.name}': {field} is needed to derive its speed and is not set")
    return value


def amortised(cold: Estimate, warm: Estimate, questions: int) -> Estimate:
    """The mean request of ``questions`` on one scope: the first cold, the rest warm."""
    if questions <= 1:
        return cold
    k = questions - 1

    def mean(a: float, b: float) -> float:
        return (a + k * b) / questions

    return replace(cold, usd=mean(cold.usd, warm.usd), latency_s=mean(cold.latency_s, warm.latency_s),
                   prefill_s=mean(cold.prefill_s, warm.prefill_s), cached_tokens=warm.cached_tokens)


@dataclass(frozen=True)
class RouteLimits:
    """The user's limits and the router's few settings.

    Attributes:
        max_usd: most money one request may cost (``None`` = no limit).
        max_latency_s: most seconds one request may take.
        max_kv_gib: most KV-cache memory one request may hold.
        min_budget: retrieval never packs fewer tokens than this.
        max_budget: retrieval never packs more (``None`` = what the window allows);
            also caps escalation.
        default_budget: retrieval budget weighed when none is given (the
            least, when ``retrieval_share`` makes it grow).
        retrieval_share: when no budget is given, the budget grows to this
            share of the tokens in scope when that is more than
            ``default_budget``, up to ``max_share_budget``: retrieval in a long
            document misses evidence that a larger budget finds; 0.2 is the
            largest round share that kept the tokens sent near a quarter of full
            context's (measured: docs/benchmarks.md#change-2-the-routers-budget-grows-with-the-scope).
            ``None`` keeps ``default_budget`` at every size.
        max_share_budget: the most ``retrieval_share`` may grow the budget to
            (``None``: twice ``default_budget``, so 8,192 by default); a large
            corpus of many small documents needs no proportional budget.
            ``max_budget`` and the window still apply.
        answer_tokens: tokens reserved for the answer.
        prompt_tokens: tokens of instructions, question and citations around the context.
        prefer_full_under_tokens: corpora up to this size go to full context
            whenever it fits the limits, whatever the question.
        cheap_full_ratio: full context also counts as cheap when the corpus is
            at most this many times the retrieval budget.
        cached_full_usd_ratio: full context also counts as cheap when its warm
            or amortised estimate (a cached prefix, see the module docstring)
            costs at most this many times retrieval's. Cold estimates never
            use it, so a profile without prompt caching routes as before. 1.1
            sends a session's warm documents in full where the cached prefix
            makes that nearly as cheap as retrieval (a served model), for all of
            full context's recall, and changes nothing where warm full still
            costs more (measured: docs/benchmarks.md#sessions-10-questions-per-document-within-the-ttl).
        adaptive_budget: let retrieval's own confidence (:mod:`hybridctx.retrieval.confidence`)
            pick each question's budget between ``adaptive_low`` and
            ``adaptive_high`` times the router's; applied by the callers that
            retrieve (``HybridContext.route``, ``ask``, ``eval route``).
        adaptive_low: the least share of the router's budget a confident question gets.
        adaptive_high: the most share a question where nothing stands out gets.
        escalate_below: with ``adaptive_budget``, a confidence below this sends
            full context instead, when it meets the limits (``None``: never).
    """

    max_usd: float | None = None
    max_latency_s: float | None = None
    max_kv_gib: float | None = None
    min_budget: int = 512
    max_budget: int | None = None
    default_budget: int = 4096
    retrieval_share: float | None = 0.2
    max_share_budget: int | None = None
    answer_tokens: int = 512
    prompt_tokens: int = 256
    prefer_full_under_tokens: int | None = None
    cheap_full_ratio: float = 2.0
    cached_full_usd_ratio: float = 1.1
    adaptive_budget: bool = False
    adaptive_low: float = 0.5
    adaptive_high: float = 1.5
    escalate_below: float | None = None

    def __post_init__(self) -> None:
        for key in ("max_usd", "max_latency_s", "max_kv_gib"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{key} {value} must be positive (or None for no limit)")
        if self.min_budget < 1:
            raise ConfigError(f"min_budget {self.min_budget} must be at least 1 token")
        if self.max_budget is not None and self.max_budget < self.min_budget:
            raise ConfigError(f"max_budget {self.max_budget} is below min_budget {self.min_budget}")
        if self.default_budget < 1:
            raise ConfigError(f"default_budget {self.default_budget} must be at least 1 token")
        if self.retrieval_share is not None and not 0 < self.retrieval_share <= 1:
            raise ConfigError(f"retrieval_share {self.retrieval_share} must be in (0, 1] "
                              "(or None for a fixed default_budget)")
        if self.max_share_budget is not None and self.max_share_budget < 1:
            raise ConfigError(f"max_share_budget {self.max_share_budget} must be at least 1 token")
        if self.answer_tokens < 1:
            raise ConfigError(f"answer_tokens {self.answer_tokens} must be at least 1")
        if self.prompt_tokens < 0:
            raise ConfigError(f"prompt_tokens {self.prompt_tokens} must be >= 0")
        if self.prefer_full_under_tokens is not None and self.prefer_full_under_tokens < 0:
            raise ConfigError(f"prefer_full_under_tokens {self.prefer_full_under_tokens} must be >= 0")
        if self.cheap_full_ratio < 1.0:
            raise ConfigError(f"cheap_full_ratio {self.cheap_full_ratio} must be at least 1")
        if not self.cached_full_usd_ratio >= 0:
            raise ConfigError(f"cached_full_usd_ratio {self.cached_full_usd_ratio} must be >= 0")
        if not 0 < self.adaptive_low <= 1 <= self.adaptive_high:
            raise ConfigError(f"adaptive_low {self.adaptive_low} and adaptive_high {self.adaptive_high} must "
                              "satisfy 0 < adaptive_low <= 1 <= adaptive_high")
        if self.escalate_below is not None and not 0 <= self.escalate_below <= 1:
            raise ConfigError(f"escalate_below {self.escalate_below} must be in [0, 1] (or None)")

    @property
    def share_cap(self) -> int:
        """The most ``retrieval_share`` may grow the budget to."""
        return 2 * self.default_budget if self.max_share_budget is None else self.max_share_budget

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RouteLimits:
        """Build from a dict, naming the nearest valid key for an unknown one."""
        reject_unknown_keys(values, cls, "route limit")
        return cls(**values)


@dataclass(frozen=True)
class RouteDecision:
    """Which mode to use for one question, and why.

    Attributes:
        mode: ``full`` (the whole corpus in scope) or ``retrieval``.
        reason: one sentence with the numbers behind the choice.
        budget: the retrieval budget weighed (the one to use when ``mode`` is
            ``retrieval``).
        estimates: ``{"full": Estimate, "retrieval": Estimate}``.
        intent: whole-corpus intent found in the question, or ``None``.
        profile: name of the model profile.
        within_limits: ``False`` when no option met the limits and the
            cheapest was chosen anyway.
        full_variants: full context's ``cold`` and ``warm`` estimates
            (``estimates["full"]`` is the one that applies); empty when not given.
        cache_applies: which full-context estimate applies: ``cold``,
            ``warm`` (the scope's prefix is cached) or ``amortised`` (the mean
            over ``expected_questions`` within the TTL).
        expected_questions: questions the user expects on this scope within
            the cache TTL, this one included.
        scope_warm: whether the scope's prefix was sent within the TTL.
    """

    mode: RouteMode
    reason: str
    budget: int
    estimates: Mapping[str, Estimate]
    intent: str | None
    profile: str
    within_limits: bool = True
    full_variants: Mapping[str, Estimate] = field(default_factory=dict)
    cache_applies: CacheApplies = "cold"
    expected_questions: int = 1
    scope_warm: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("full", "retrieval"):
            raise ConfigError(f"route mode '{self.mode}' is not one of full, retrieval")
        if set(self.estimates) != {"full", "retrieval"}:
            raise ConfigError(f"route estimates need keys full and retrieval, got {sorted(self.estimates)}")
        if self.budget < 0:
            raise ConfigError(f"route budget {self.budget} must be >= 0")

    def to_json(self) -> dict[str, Any]:
        """The ``route --json`` contract: mode, reason, budget, estimates (+ extra keys).

        Each estimate is the one that applies, with ``applies`` naming it and
        its ``cold`` and ``warm`` variants beside it (retrieval's packed spans
        change with each question, so its two are the same).
        """
        full, retrieval = self.estimates["full"].to_json(), self.estimates["retrieval"].to_json()
        variants = self.full_variants or {"cold": self.estimates["full"], "warm": self.estimates["full"]}
        full.update(applies=self.cache_applies, cold=variants["cold"].to_json(), warm=variants["warm"].to_json())
        retrieval.update(applies="cold", cold=dict(retrieval), warm=dict(retrieval))
        return {
            "mode": self.mode,
            "reason": self.reason,
            "budget": self.budget,
            "estimates": {"full": full, "retrieval": retrieval},
            "intent": self.intent,
            "profile": self.profile,
            "within_limits": self.within_limits,
            "cache": {"applies": self.cache_applies, "scope_warm": self.scope_warm,
                      "expected_questions": self.expected_questions},
        }


class Router:
    """Decides full context or retrieval for one model profile under the user's limits.

    Args:
        profile: a `ModelProfile` or a profile name.
        limits: the user's limits (defaults: none, budget 512..window).
        profiles_file: user TOML file consulted when ``profile`` is a name.

    Example:
        >>> router = Router("kimi", RouteLimits(max_usd=0.05))
        >>> router.decide("Who is the Hatter?", full_tokens=40_000).mode
        'retrieval'
    """

    def __init__(
        self,
        profile: ModelProfile | str,
        limits: RouteLimits | None = None,
        *,
        profiles_file: Path | str | None = None,
    ) -> None:
        self.profile = get_profile(profile, profiles_file) if isinstance(profile, str) else profile
        self.limits = limits or RouteLimits()

    def estimate(self, context_tokens: int) -> Estimate:
        """Estimate a request carrying ``context_tokens`` of context plus prompt and answer."""
        lim = self.limits
        return estimate(self.profile, context_tokens + lim.prompt_tokens, lim.answer_tokens)

    def decide(
        self,
        query: str,
        full_tokens: int,
        retrieval_budget: int | None = None,
        *,
        warm: bool = False,
        expected_questions: int = 1,
    ) -> RouteDecision:
        """Choose full context or retrieval for one question.

        Full context wins when it fits the window, the memory and every limit
        and either the question is about the whole corpus or full context is
        cheap anyway (corpus at most ``cheap_full_ratio`` x the budget, or under
        ``prefer_full_under_tokens``, or a warm or amortised cached prefix makes
        it cost at most ``cached_full_usd_ratio`` x retrieval). Otherwise
        retrieval at the budget; if that breaks a limit too, retrieval at the
        largest budget that fits; if none fits, retrieval at ``min_budget``
        with ``within_limits=False``.

        Args:
            query: the question (only its intent is read).
            full_tokens: tokens of the whole corpus in scope, in the profile's tokenizer.
            retrieval_budget: budget to weigh; ``None`` = ``default_budget``,
                or ``retrieval_share`` of ``full_tokens`` when that is larger
                (up to ``max_share_budget``), clamped to ``[min_budget,
                max_budget]`` and the window.
            warm: the scope's full context was sent within the profile's cache
                TTL (its prefix is cached); ignored for a profile without caching.
            expected_questions: questions the user expects on this scope within
                the TTL, this one included: a cold scope's cache write is
                amortised over them.
        """
        if full_tokens < 0:
            raise ConfigError(f"full_tokens {full_tokens} must be >= 0")
        if isinstance(expected_questions, bool) or not isinstance(expected_questions, int) or expected_questions < 1:
            raise ConfigError(f"expected_questions {expected_questions!r} must be a whole number, at least 1")
        lim, name = self.limits, self.profile.name
        budget = self._budget(retrieval_budget, full_tokens)
        at_budget = f"retrieval at {budget:,} tokens"
        if retrieval_budget is None and budget > lim.default_budget and lim.retrieval_share is not None:
            share = lim.retrieval_share * full_tokens
            at_budget += (f" (max_share_budget; {lim.retrieval_share:.0%} of the corpus would be {share:,.0f})"
                          if budget == lim.share_cap < share else f" ({budget / full_tokens:.0%} of the corpus)")
        intent = detect_intent(query)
        cache = self._full_cache(full_tokens, warm, expected_questions)
        full = cache.applied
        retrieval = self._retrieval(budget, full_tokens)
        full_bad, ret_bad = self._violations(full), self._violations(retrieval)
        fits = f"fits the {self.profile.window:,}-token window of {name}"

        cheap = ""
        if full_tokens <= lim.cheap_full_ratio * budget:
            cheap = (f"the corpus ({full_tokens:,} tokens) is at most {lim.cheap_full_ratio:g}x the "
                     f"{budget:,}-token retrieval budget, so retrieval saves little")
        elif lim.prefer_full_under_tokens is not None and full_tokens <= lim.prefer_full_under_tokens:
            cheap = (f"the corpus ({full_tokens:,} tokens) is under prefer_full_under_tokens "
                     f"({lim.prefer_full_under_tokens:,})")
        elif cache.applies != "cold" and full.usd <= lim.cached_full_usd_ratio * retrieval.usd:
            cheap = self._cache_why(cache, retrieval, at_budget)

        if not full_bad and (intent or cheap):
            why = f"the question asks about the whole corpus ({intent})" if intent else cheap
            reason = (f"{why}; full context ({full.tokens:,} tokens) {fits} and costs {_usd(full.usd)}"
                      f"{cache.tag} and ~{_sec(full.latency_s)} s ({at_budget}: "
                      f"{_usd(retrieval.usd)}, ~{_sec(retrieval.latency_s)} s)")
            return self._decision("full", reason, budget, full, retrieval, intent, cache=cache)

        if full_bad:
            head = f"full context ({full.tokens:,} tokens) {_join(full_bad)}"
            if intent:
                head = f"the question asks about the whole corpus ({intent}), but {head}"
        else:
            head = (f"full context ({full.tokens:,} tokens) would fit but costs {_usd(full.usd)}{cache.tag} and "
                    f"~{_sec(full.latency_s)} s, and the question is not about the whole corpus")
        if not ret_bad:
            reason = (f"{head}; {at_budget} costs {_usd(retrieval.usd)} "
                      f"and ~{_sec(retrieval.latency_s)} s")
            return self._decision("retrieval", reason, budget, full, retrieval, intent, cache=cache)

        smaller = self._largest_fitting(lim.min_budget, budget - 1, full_tokens)
        if smaller is not None:
            est = self._retrieval(smaller, full_tokens)
            reason = (f"{head}; {at_budget} {_join(ret_bad)}; the largest budget "
                      f"within the limits is {smaller:,} tokens, costing {_usd(est.usd)} and "
                      f"~{_sec(est.latency_s)} s")
            return self._decision("retrieval", reason, smaller, full, est, intent, cache=cache)
        est = self._retrieval(lim.min_budget, full_tokens)
        reason = (f"{head}; even retrieval at the minimum budget of {lim.min_budget:,} tokens "
                  f"{_join(self._violations(est))}; no option meets the limits, so retrieval at "
                  f"{lim.min_budget:,} tokens, the cheapest, costing {_usd(est.usd)} and "
                  f"~{_sec(est.latency_s)} s")
        return self._decision("retrieval", reason, lim.min_budget, full, est, intent, within_limits=False,
                              cache=cache)

    def escalate(self, decision: RouteDecision, full_tokens: int) -> RouteDecision | None:
        """The Self-Route step after a retrieval answer that says it cannot answer.

        Returns:
            Full context if it fits the window, memory and limits; else
            retrieval at the largest budget within the limits above the last
            one, up to 4x it (and ``max_budget`` and the window); else ``None``
            (also when ``decision`` was already full context, or its budget
            already covered the whole corpus).
        """
        name = self.profile.name
        if decision.mode == "full" or decision.budget >= full_tokens:
            logger.info("route escalation for profile %s: nothing larger to try (mode=%s budget=%d "
                        "full_tokens=%d)", name, decision.mode, decision.budget, full_tokens)
            return None
        old = decision.budget
        cache = self._full_cache(full_tokens, decision.scope_warm, decision.expected_questions)
        full = cache.applied
        full_bad = self._violations(full)
        if not full_bad:
            retrieval = self._retrieval(old, full_tokens)
            reason = (f"retrieval at {old:,} tokens could not answer; full context ({full.tokens:,} "
                      f"tokens) fits the {self.profile.window:,}-token window of {name} and costs "
                      f"{_usd(full.usd)}{cache.tag} and ~{_sec(full.latency_s)} s")
            return self._decision("full", reason, old, full, retrieval, decision.intent, cache=cache)
        cap = min(4 * old, self._max_budget())
        larger = self._largest_fitting(old + 1, cap, full_tokens)
        if larger is None:
            logger.info("route escalation for profile %s: full context (%d tokens) %s and no budget in "
                        "%d..%d fits the limits; giving up", name, full.tokens, _join(full_bad), old + 1, cap)
            return None
        est = self._retrieval(larger, full_tokens)
        reason = (f"retrieval at {old:,} tokens could not answer and full context ({full.tokens:,} "
                  f"tokens) {_join(full_bad)}; retrying retrieval at {larger:,} tokens costs "
                  f"{_usd(est.usd)} and ~{_sec(est.latency_s)} s")
        return self._decision("retrieval", reason, larger, full, est, decision.intent, cache=cache)

    def cache_estimates(self, context_tokens: int) -> dict[str, Estimate]:
        """A full-context request of ``context_tokens``: ``cold`` (the prefix written) and ``warm`` (read)."""
        cache = self._full_cache(context_tokens, False, 1)
        return {"cold": cache.cold, "warm": cache.warm}

    def max_budget(self) -> int:
        """The largest retrieval budget: ``max_budget`` or what the window leaves."""
        return self._max_budget()

    def with_reason(self, decision: RouteDecision, reason: str) -> RouteDecision:
        """The same decision with another reason."""
        return replace(decision, reason=reason)

    def rebudget(self, decision: RouteDecision, budget: int, full_tokens: int, why: str) -> RouteDecision:
        """A retrieval decision at another budget (clamped to the limits), ``why`` added to its reason."""
        lim = self.limits
        wanted = min(max(budget, lim.min_budget), self._max_budget())
        if self._violations(self._retrieval(wanted, full_tokens)):
            wanted = self._largest_fitting(lim.min_budget, wanted, full_tokens) or decision.budget
        est = self._retrieval(wanted, full_tokens)
        reason = (f"{decision.reason}; {why}: retrieval at {wanted:,} tokens costs {_usd(est.usd)} and "
                  f"~{_sec(est.latency_s)} s")
        return replace(decision, budget=wanted, reason=reason,
                       estimates={"full": decision.estimates["full"], "retrieval": est})

    # -- internals ---------------------------------------------------------------------------

    def _full_cache(self, full_tokens: int, warm: bool, expected_questions: int) -> _FullCache:
        """Full context's cold and warm estimates, and the one that applies."""
        p, lim = self.profile, self.limits
        n, m = full_tokens + lim.prompt_tokens, lim.answer_tokens
        prefix = p.cached_prefix(full_tokens)
        cold = estimate(p, n, m, cache_write_tokens=prefix)
        hot = estimate(p, n, m, cached_tokens=prefix) if prefix else cold
        if prefix and warm:
            return _FullCache(hot, cold, hot, "warm", expected_questions, True, prefix,
                              f" warm ({_usd(cold.usd)} cold)")
        if prefix and expected_questions > 1:
            mean = amortised(cold, hot, expected_questions)
            return _FullCache(mean, cold, hot, "amortised", expected_questions, warm, prefix,
                              f" a question amortised over {expected_questions} ({_usd(cold.usd)} the first, "
                              f"{_usd(hot.usd)} each warm one)")
        return _FullCache(cold, cold, hot, "cold", expected_questions, warm, prefix, "")

    def _cache_why(self, cache: _FullCache, retrieval: Estimate, at_budget: str) -> str:
        p, ratio = self.profile, self.limits.cached_full_usd_ratio
        cached = (f"at ${p.usd_per_m_cached_input:g}/M" if p.usd_per_m_cached_input is not None
                  else "with its prefill skipped")
        if cache.applies == "warm":
            head = (f"this scope's {cache.prefix:,}-token prefix was sent within the {p.cache_ttl_s:g} s cache TTL "
                    f"of {p.name}, so it is read from the cache {cached}")
        else:
            head = (f"over the {cache.expected_questions} questions expected on this scope within the "
                    f"{p.cache_ttl_s:g} s cache TTL of {p.name}, the {cache.prefix:,}-token prefix is written "
                    f"once and then read from the cache {cached}")
        return (f"{head}: full context costs {_usd(cache.applied.usd)}, at most {ratio:g}x {at_budget} "
                f"({_usd(retrieval.usd)})")

    def _max_budget(self) -> int:
        lim = self.limits
        usable = self.profile.window - lim.prompt_tokens - lim.answer_tokens
        cap = usable if lim.max_budget is None else min(lim.max_budget, usable)
        return max(lim.min_budget, cap)

    def _budget(self, asked: int | None, full_tokens: int) -> int:
        lim = self.limits
        wanted = lim.default_budget if asked is None else asked
        if asked is None and lim.retrieval_share is not None:
            share = math.ceil(lim.retrieval_share * full_tokens)
            wanted = max(wanted, min(share, lim.share_cap))
        budget = min(max(wanted, lim.min_budget), self._max_budget())
        if asked is not None and budget != asked:
            logger.info("retrieval budget %d clamped to %d (min_budget %d, max %d for %s)",
                        asked, budget, lim.min_budget, self._max_budget(), self.profile.name)
        return budget

    def _retrieval(self, budget: int, full_tokens: int) -> Estimate:
        # Retrieval never sends more than the corpus holds.
        return self.estimate(min(budget, full_tokens))

    def _violations(self, est: Estimate) -> list[str]:
        p, lim, out = self.profile, self.limits, []
        if not est.fits_window:
            out.append(f"exceeds the {p.window:,}-token window of {p.name}")
        elif p.effective_context is not None and est.input_tokens > p.effective_context:
            out.append(f"exceeds the {p.effective_context:,} tokens {p.name} really uses (its effective context)")
        if not est.fits_memory:
            out.append(f"needs {est.kv_gib:.1f} GiB of KV cache, more than the "
                       f"{max(p.usable_memory_gib or 0.0, 0.0):.1f} GiB {p.name} has left after weights "
                       "and overhead")
        if lim.max_usd is not None and est.usd > lim.max_usd:
            out.append(f"costs {_usd(est.usd)}, over max_usd {_usd(lim.max_usd)}")
        if lim.max_latency_s is not None and est.latency_s > lim.max_latency_s:
            out.append(f"takes ~{_sec(est.latency_s)} s, over max_latency_s {lim.max_latency_s:g} s")
        if lim.max_kv_gib is not None and est.kv_gib > lim.max_kv_gib:
            out.append(f"needs {est.kv_gib:.2f} GiB of KV cache, over max_kv_gib {lim.max_kv_gib:g}")
        return out

    def _largest_fitting(self, lo: int, hi: int, full_tokens: int) -> int | None:
        """Largest budget in ``[lo, hi]`` whose retrieval meets every limit (costs grow with budget)."""
        if hi < lo or self._violations(self._retrieval(lo, full_tokens)):
            return None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._violations(self._retrieval(mid, full_tokens)):
                hi = mid - 1
            else:
                lo = mid
        return lo

    def _decision(
        self,
        mode: RouteMode,
        reason: str,
        budget: int,
        full: Estimate,
        retrieval: Estimate,
        intent: str | None,
        *,
        within_limits: bool = True,
        cache: _FullCache | None = None,
    ) -> RouteDecision:
        decision = RouteDecision(
            mode=mode,
            reason=reason,
            budget=budget,
            estimates={"full": full, "retrieval": retrieval},
            intent=intent,
            profile=self.profile.name,
            within_limits=within_limits,
            full_variants={"cold": cache.cold, "warm": cache.warm} if cache else {},
            cache_applies=cache.applies if cache else "cold",
            expected_questions=cache.expected_questions if cache else 1,
            scope_warm=cache.scope_warm if cache else False,
        )
        logger.info(
            "route %s on %s: budget=%d intent=%s within_limits=%s full[%s] retrieval[%s]: %s",
            mode, self.profile.name, budget, intent, within_limits,
            full._summary(), retrieval._summary(), reason,
        )
        return decision


@dataclass(frozen=True)
class _FullCache:
    """Full context's estimates under prompt caching, and which one the router uses."""

    applied: Estimate
    cold: Estimate
    warm: Estimate
    applies: CacheApplies
    expected_questions: int
    scope_warm: bool
    prefix: int
    tag: str


def _usd(x: float) -> str:
    if x == 0:
        return "$0"
    if x >= 1:
        return f"${x:,.2f}"
    if x >= 0.0001:
        return f"${x:.4f}"
    return f"${x:.6f}"


def _sec(x: float) -> str:
    if math.isinf(x):
        return "inf"
    return f"{x:,.1f}" if x >= 0.1 else f"{x:.2f}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
