"""The cost router: estimate arithmetic, decisions, reasons, JSON contract, escalation."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.errors import ConfigError
from hybridctx.routing.profiles import ModelProfile, get_profile
from hybridctx.routing.router import (
    RouteDecision,
    RouteLimits,
    Router,
    detect_intent,
    estimate,
)

GIB = 2**30


def api_profile(**overrides) -> ModelProfile:
    values = dict(name="toy-api", kind="api", model="toy", window=100_000, usd_per_m_input=1.0,
                  usd_per_m_output=2.0, prefill_tps=1000.0, decode_tps=10.0, api_latency_s=0.5)
    values.update(overrides)
    return ModelProfile(**values)


def gpu_profile(**overrides) -> ModelProfile:
    values = dict(name="toy-gpu", kind="vllm", model="toy", window=1_000_000, params=1e9, layers=10,
                  hidden_size=1000, kv_heads=2, head_dim=100, kv_dtype_bytes=2, peak_flops=1e12,
                  flops_efficiency=0.5, memory_bandwidth=1e11, bandwidth_efficiency=0.5,
                  usd_per_gpu_hour=3.6)
    values.update(overrides)
    return ModelProfile(**values)


# -- estimates ---------------------------------------------------------------------------------


def test_api_estimate_by_hand():
    e = estimate(api_profile(), 10_000, 100)
    assert e.usd == pytest.approx(10_000 * 1.0 / 1e6 + 100 * 2.0 / 1e6)  # 0.0102
    assert e.prefill_s == pytest.approx(10.0)
    assert e.decode_s == pytest.approx(10.0)
    assert e.latency_s == pytest.approx(20.5)
    assert (e.tokens, e.input_tokens, e.output_tokens) == (10_100, 10_000, 100)
    assert e.kv_gib == 0.0 and e.fits_window and e.fits_memory


def test_first_principles_estimate_by_hand():
    p = gpu_profile()
    assert p.kv_bytes_per_token == 2 * 10 * 2 * 100 * 2 == 8000
    e = estimate(p, 1000, 10)
    flops = 2 * 1e9 * 1000 + 2 * 10 * 1000**2 * 1000  # linear + causal attention
    assert e.prefill_s == pytest.approx(flops / (1e12 * 0.5))  # 4.04 s
    weights = 1e9 * 2
    assert e.decode_s == pytest.approx(10 * (weights + 8000 * 1000) / (1e11 * 0.5))  # 0.4016 s
    assert e.usd == pytest.approx((e.prefill_s + e.decode_s) * 3.6 / 3600)
    assert e.kv_gib == pytest.approx(8000 * 1010 / GIB)


def test_quadratic_term_makes_prefill_superlinear():
    p = gpu_profile()
    short, long = estimate(p, 10_000, 1), estimate(p, 100_000, 1)
    assert long.prefill_s > 10 * short.prefill_s * 1.5
    # With a measured throughput, the same attention/linear ratio stretches it.
    q = get_profile("qwen2.5-7b-instruct-1m-vllm-h100")
    timed = ModelProfile(name="t", kind="vllm", model="m", window=2_000_000, prefill_tps=10_000.0,
                         decode_tps=100.0, params=q.params, layers=q.layers, hidden_size=q.hidden_size)
    n = 200_000
    assert estimate(timed, n, 1).prefill_s == pytest.approx(n / 10_000 * (1 + 28 * n * 3584 / 7.61e9))
    assert estimate(timed, 2 * n, 1).prefill_s > 2 * estimate(timed, n, 1).prefill_s


def test_qwen_kv_gib_and_memory_fit():
    q = get_profile("qwen2.5-7b-instruct-1m-vllm-h100")
    e = estimate(q, 100_000, 0)
    assert e.kv_gib == pytest.approx(57_344 * 100_000 / GIB)
    assert e.fits_memory
    tight = gpu_profile(gpu_memory_gib=4.0, memory_utilization=1.0)  # 1.86 GiB weights
    assert estimate(tight, 200_000, 0).fits_memory
    assert not estimate(tight, 400_000, 0).fits_memory  # 2.98 GiB of KV


def test_estimate_json_and_negative_tokens():
    e = estimate(api_profile(), 1234, 5)
    data = e.to_json()
    assert {"tokens", "usd", "latency_s", "kv_gib", "prefill_s", "decode_s", "fits_window",
            "fits_memory"} <= set(data)
    with pytest.raises(ConfigError):
        estimate(api_profile(), -1, 5)


# -- decisions ---------------------------------------------------------------------------------


def test_small_corpus_goes_full():
    d = Router("kimi").decide("Who is the Hatter?", full_tokens=3000)
    assert d.mode == "full"
    assert "3,000 tokens" in d.reason and "4,096" in d.reason
    assert d.profile == "kimi"


def test_corpus_beyond_window_goes_retrieval_with_numbers():
    d = Router("kimi").decide("Who is the Hatter?", full_tokens=183_204)
    assert d.mode == "retrieval"
    assert d.budget == 8192  # 20% of the corpus, capped at max_share_budget
    full, ret = d.estimates["full"], d.estimates["retrieval"]
    assert not full.fits_window and ret.fits_window
    assert f"full context ({full.tokens:,} tokens)" in d.reason
    assert "131,072-token window of kimi" in d.reason
    assert "retrieval at 8,192 tokens (max_share_budget; 20% of the corpus would be 36,641) costs $" in d.reason
    assert f"~{ret.latency_s:.1f} s" in d.reason


def test_mid_corpus_without_intent_goes_retrieval():
    d = Router("gpt-4o-mini").decide("What did the Queen shout?", full_tokens=60_000)
    assert d.mode == "retrieval"
    assert "not about the whole corpus" in d.reason


def test_summary_intent_goes_full_when_affordable_and_retrieval_over_max_usd():
    router = Router("gpt-4o-mini")
    d = router.decide("Summarise the whole book", full_tokens=100_000)
    assert d.mode == "full" and d.intent == "summarise"
    cost = d.estimates["full"].usd
    capped = Router("gpt-4o-mini", RouteLimits(max_usd=cost / 2))
    d2 = capped.decide("Summarise the whole book", full_tokens=100_000)
    assert d2.mode == "retrieval" and d2.within_limits
    assert "max_usd" in d2.reason and "summarise" in d2.reason
    assert d2.estimates["retrieval"].usd <= cost / 2


def test_prefer_full_under_tokens():
    limits = RouteLimits(prefer_full_under_tokens=50_000)
    assert Router("gpt-4o-mini", limits).decide("Who?", full_tokens=40_000).mode == "full"
    assert Router("gpt-4o-mini").decide("Who?", full_tokens=40_000).mode == "retrieval"


def test_memory_limit_names_the_kv_cache():
    d = Router("llama-3.1-8b-instruct-vllm-h100").decide("Summarize everything overall", 900_000)
    assert d.mode == "retrieval"
    assert not d.estimates["full"].fits_memory
    assert "GiB of KV cache" in d.reason


def test_over_limits_shrinks_to_the_largest_budget_that_fits():
    p = api_profile(window=1_000_000)
    lim = RouteLimits(max_usd=0.003)  # answer 512 tokens = $0.001024, so ~1,700 input tokens
    d = Router(p, lim).decide("Who?", full_tokens=500_000)
    assert d.mode == "retrieval" and d.within_limits
    assert lim.min_budget <= d.budget < 4096
    assert d.estimates["retrieval"].usd <= 0.003
    assert estimate(p, d.budget + 1 + lim.prompt_tokens, lim.answer_tokens).usd > 0.003
    assert f"largest budget within the limits is {d.budget:,} tokens" in d.reason


def test_nothing_fits_says_so():
    d = Router(api_profile(), RouteLimits(max_latency_s=1.0)).decide("Who?", full_tokens=500_000)
    assert d.mode == "retrieval" and not d.within_limits
    assert d.budget == 512
    assert "no option meets the limits" in d.reason
    assert d.to_json()["within_limits"] is False


def test_budget_is_clamped():
    router = Router("kimi", RouteLimits(min_budget=1000, max_budget=2000))
    assert router.decide("Who?", 500_000, retrieval_budget=10).budget == 1000
    assert router.decide("Who?", 500_000, retrieval_budget=10**6).budget == 2000
    assert router.decide("Who?", 500_000).budget == 2000
    smol = Router("smollm2-135m-cpu", RouteLimits(default_budget=100_000))
    assert smol.decide("Who?", 500_000).budget == 8192 - 256 - 512


def test_budget_grows_with_the_corpus():
    router = Router("kimi")
    # 20% of the corpus when that is more than default_budget, up to max_share_budget.
    assert router.decide("Who?", full_tokens=20_000).budget == 4096
    d = router.decide("Who?", full_tokens=25_000)
    assert d.mode == "retrieval" and d.budget == 5000
    assert "retrieval at 5,000 tokens (20% of the corpus) costs $" in d.reason
    assert d.estimates["retrieval"].input_tokens == 5000 + 256
    assert router.decide("Who?", full_tokens=100_000).budget == 8192
    # The cheap-full rule still weighs default_budget: 8k tokens go full.
    assert router.decide("Who?", full_tokens=8000).mode == "full"
    # An asked budget is used as asked; None turns the growth off; max_budget still caps it.
    assert router.decide("Who?", 25_000, retrieval_budget=4096).budget == 4096
    assert Router("kimi", RouteLimits(retrieval_share=None)).decide("Who?", 25_000).budget == 4096
    assert Router("kimi", RouteLimits(max_budget=4500)).decide("Who?", 25_000).budget == 4500
    wide = Router("kimi", RouteLimits(retrieval_share=0.5, max_share_budget=20_000))
    assert wide.decide("Who?", 25_000).budget == 12_500
    # Without max_share_budget the growth stops at twice default_budget.
    assert Router("kimi", RouteLimits(default_budget=1024)).decide("Who?", 100_000).budget == 2048
    with pytest.raises(ConfigError, match="retrieval_share"):
        RouteLimits(retrieval_share=0.0)
    with pytest.raises(ConfigError, match="retrieval_share"):
        RouteLimits(retrieval_share=1.5)
    with pytest.raises(ConfigError, match="max_share_budget"):
        RouteLimits(max_share_budget=0)


def test_decision_is_logged_with_numbers(caplog):
    with caplog.at_level(logging.INFO, logger="hybridctx.routing.router"):
        Router("kimi").decide("Who?", full_tokens=183_204)
    record = next(r for r in caplog.records if r.name == "hybridctx.routing.router")
    assert record.levelno == logging.INFO
    assert "budget=8192" in record.getMessage() and "tokens=183972" in record.getMessage()


def test_json_contract():
    d = Router("kimi").decide("List all the characters", full_tokens=20_000)
    data = json.loads(json.dumps(d.to_json()))
    assert set(data) >= {"mode", "reason", "budget", "estimates"}
    assert data["mode"] in ("full", "retrieval")
    assert isinstance(data["reason"], str) and isinstance(data["budget"], int)
    assert set(data["estimates"]) == {"full", "retrieval"}
    for est in data["estimates"].values():
        assert {"tokens", "usd", "latency_s", "kv_gib"} <= set(est)
        assert isinstance(est["tokens"], int)
    assert data["intent"] == "list-all"


def test_route_decision_validates():
    e = estimate(api_profile(), 10, 1)
    both = {"full": e, "retrieval": e}
    with pytest.raises(ConfigError):
        RouteDecision(mode="both", reason="", budget=1, estimates=both, intent=None, profile="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        RouteDecision(mode="full", reason="", budget=1, estimates={"full": e}, intent=None, profile="x")


def test_limits_validate_and_suggest():
    with pytest.raises(ConfigError, match="did you mean 'max_usd'"):
        RouteLimits.from_mapping({"max_usdd": 1.0})
    assert RouteLimits.from_mapping({"max_usd": 0.5}).max_usd == 0.5
    with pytest.raises(ConfigError, match="max_budget"):
        RouteLimits(min_budget=1000, max_budget=10)
    with pytest.raises(ConfigError, match="max_usd"):
        RouteLimits(max_usd=0)


@settings(max_examples=examples(60), deadline=None)
@given(
    full_tokens=st.integers(0, 3_000_000),
    max_usd=st.one_of(st.none(), st.floats(1e-4, 1.0)),
    max_latency=st.one_of(st.none(), st.floats(1.0, 600.0)),
    asked=st.one_of(st.none(), st.integers(1, 200_000)),
)
def test_decisions_respect_budget_bounds_and_limits(full_tokens, max_usd, max_latency, asked):
    lim = RouteLimits(max_usd=max_usd, max_latency_s=max_latency, max_budget=32_768)
    d = Router(get_profile("qwen2.5-7b-instruct-1m-vllm-h100"), lim).decide("q", full_tokens, asked)
    assert lim.min_budget <= d.budget <= 32_768
    chosen = d.estimates[d.mode]
    if d.within_limits:
        assert chosen.fits_window and chosen.fits_memory
        assert max_usd is None or chosen.usd <= max_usd
        assert max_latency is None or chosen.latency_s <= max_latency


# -- escalation --------------------------------------------------------------------------------


def test_escalates_to_full_when_it_fits():
    router = Router("qwen2.5-7b-instruct-1m-vllm-h100")
    first = router.decide("Who is the Hatter?", full_tokens=300_000)
    assert first.mode == "retrieval"
    up = router.escalate(first, 300_000)
    assert up is not None and up.mode == "full"
    assert "could not answer" in up.reason and "300,768 tokens" in up.reason


def test_escalates_to_a_larger_budget_when_full_does_not_fit():
    router = Router("kimi")
    first = router.decide("Who is the Hatter?", full_tokens=500_000)
    up = router.escalate(first, 500_000)
    assert first.budget == 8192
    assert up is not None and up.mode == "retrieval"
    assert up.budget == 4 * first.budget
    assert "exceeds the 131,072-token window" in up.reason and "32,768 tokens" in up.reason
    # Under a money limit it grows only as far as the limit allows.
    cost_8k = router.estimate(8192).usd
    capped = Router("kimi", RouteLimits(max_usd=cost_8k, retrieval_share=None))  # first try at 4,096
    up2 = capped.escalate(capped.decide("Who?", 500_000), 500_000)
    assert up2 is not None and up2.budget == 8192


def test_escalation_gives_up():
    router = Router("kimi", RouteLimits(max_budget=4096))
    first = router.decide("Who?", full_tokens=500_000)
    assert router.escalate(first, 500_000) is None  # already at max_budget, full over the window
    full = router.decide("Who?", full_tokens=1000)
    assert full.mode == "full" and router.escalate(full, 1000) is None
    small = Router("kimi", RouteLimits(max_usd=1e-3)).decide("Who?", full_tokens=300)
    assert small.mode == "retrieval" and small.budget >= 300
    assert Router("kimi").escalate(small, 300) is None  # retrieval already held everything


# -- intent and unanswerable answers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "label"),
    [
        ("Summarise the whole book", "summarise"),
        ("Can you summarize chapter 3?", "summarise"),
        ("List every character who meets the Queen", "list-all"),
        ("How many times does Alice cry?", "list-all"),
        ("Compare the chapters about the trial", "compare"),
        ("What is the overall tone?", "whole-corpus"),
        ("How does Alice change throughout the story?", "whole-corpus"),
        ("请总结这本书", "summarise"),
        ("概括一下全文", "summarise"),
        ("列出所有出场的人物", "list-all"),
        ("比较第一章和第二章", "compare"),
        ("全书的主旨是什么", "whole-corpus"),
    ],
)
def test_detect_intent(query, label):
    assert detect_intent(query) == label


@pytest.mark.parametrize(
    "query",
    ["Who is the Hatter?", "What did the Queen shout at all the gardeners?", "这个方法比较好吗？",
     "爱丽丝在哪里遇到了柴郡猫？"],
)
def test_no_intent_for_local_questions(query):
    assert detect_intent(query) is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The context does not mention the Hatter's name.", True),
        ("I cannot answer this from the given passages.", True),
        ("There is not enough information to say.", True),
        ("无法回答：文中没有提到。", True),
        ("The Hatter's tea party is at six o'clock.", False),
        ("她在树上遇到了柴郡猫。", False),
    ],
)
def test_unanswerable_signal_for_escalation(answer, expected):
    from hybridctx.llms.prompts import says_unanswerable

    assert says_unanswerable(answer) is expected
