"""Prompt caching in profiles and estimates (issue 14, part 1): cold and warm prices, by hand."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hybridctx.errors import ConfigError
from hybridctx.routing.profiles import ModelProfile, get_profile, load_profiles
from hybridctx.routing.router import RouteLimits, Router, amortised, estimate

# An API profile with round numbers: $1/M input, $0.10/M on a cache hit, nothing for output.
CACHED = ModelProfile(
    name="round-cached", kind="api", model="m", window=100_000, usd_per_m_input=1.0, usd_per_m_output=0.0,
    prefill_tps=1000.0, decode_tps=10.0, usd_per_m_cached_input=0.1, cache_ttl_s=300.0,
    cache_min_tokens=1024, cache_granularity_tokens=128,
)
LIMITS = RouteLimits(default_budget=500, min_budget=100, retrieval_share=None, prompt_tokens=256, answer_tokens=100,
                     cheap_full_ratio=1.0, cached_full_usd_ratio=1.0)


def test_every_shipped_profile_states_its_cache_rules() -> None:
    profiles = load_profiles()
    assert profiles["kimi"].usd_per_m_cached_input == pytest.approx(0.15)  # the toml's own note: $0.15 on a hit
    assert profiles["gpt-4o-mini"].usd_per_m_cached_input == pytest.approx(0.075)
    assert profiles["gpt-4o-mini"].cached_prefix(1023) == 0 and profiles["gpt-4o-mini"].cached_prefix(1300) == 1280
    for name in ("qwen2.5-7b-instruct-1m-vllm-h100", "llama-3.1-8b-instruct-vllm-h100"):
        assert profiles[name].cache_skips_prefill and profiles[name].caches_prefix
    for name in ("moonshot-v1-128k", "smollm2-135m-cpu"):  # not modelled: priced cold, as before
        assert not profiles[name].caches_prefix and profiles[name].cached_prefix(50_000) == 0


def test_a_user_profile_without_cache_keys_still_loads_and_prices_cold(tmp_path) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text('[profiles.plain]\nkind = "api"\nmodel = "x"\nwindow = 8192\nusd_per_m_input = 2.0\n'
                     "prefill_tps = 100.0\ndecode_tps = 10.0\n", encoding="utf-8")
    plain = get_profile("plain", extra)
    assert not plain.caches_prefix
    decision = Router(plain, LIMITS).decide("Who?", 5000, warm=True, expected_questions=10)
    assert decision.cache_applies == "cold" and decision.mode == "retrieval"
    full = decision.to_json()["estimates"]["full"]
    assert full["cold"] == full["warm"] and full["usd"] == pytest.approx((5000 + 256) * 2.0 / 1e6)


@pytest.mark.parametrize("values, word", [
    ({"usd_per_m_cached_input": -1.0}, "usd_per_m_cached_input"),
    ({"cache_write_multiplier": 0.5}, "cache_write_multiplier"),
    ({"cache_granularity_tokens": 0}, "cache_granularity_tokens"),
    ({"cache_min_tokens": 1.5}, "cache_min_tokens"),
    ({"cache_skips_prefill": "yes"}, "cache_skips_prefill"),
])
def test_bad_cache_values_are_refused_by_name(values, word) -> None:
    with pytest.raises(ConfigError, match=word):
        replace(CACHED, **values)


def test_cold_warm_and_amortised_estimates_by_hand() -> None:
    n, c = 5256, 4992  # 5,000 context tokens + 256 prompt; the cached prefix in 128-token blocks
    cold = estimate(CACHED, n, 100, cache_write_tokens=c)
    warm = estimate(CACHED, n, 100, cached_tokens=c)
    assert cold.usd == pytest.approx(n * 1.0 / 1e6)
    assert warm.usd == pytest.approx((n - c) * 1.0 / 1e6 + c * 0.1 / 1e6)
    assert warm.prefill_s == cold.prefill_s  # an API discounts; it does not skip the prefill
    mean = amortised(cold, warm, 10)
    assert mean.usd == pytest.approx((cold.usd + 9 * warm.usd) / 10)
    # A write surcharge (Anthropic's 1.25x) is paid on the prefix only.
    dearer = estimate(replace(CACHED, cache_write_multiplier=1.25), n, 100, cache_write_tokens=c)
    assert dearer.usd == pytest.approx(((n - c) + 1.25 * c) / 1e6)
    with pytest.raises(ConfigError, match="exceed"):
        estimate(CACHED, 100, 1, cached_tokens=80, cache_write_tokens=30)


def test_skipped_prefill_removes_exactly_the_prefix_work() -> None:
    vllm = get_profile("qwen2.5-7b-instruct-1m-vllm-h100")
    p = vllm
    n, c = 40_256, 40_000
    cold = estimate(vllm, n, 512)
    warm = estimate(vllm, n, 512, cached_tokens=c)

    def flops(k: int) -> float:
        return 2 * p.params * k + 2 * p.layers * k * k * p.hidden_size

    speed = p.peak_flops * p.flops_efficiency
    assert cold.prefill_s == pytest.approx(flops(n) / speed)
    assert warm.prefill_s == pytest.approx((flops(n) - flops(c)) / speed)
    assert warm.decode_s == cold.decode_s and warm.usd < cold.usd / 1.5


def test_route_json_shows_cold_and_warm_and_which_applies() -> None:
    router = Router(CACHED, LIMITS)
    cold = router.decide("Who is the Hatter?", 5000)
    warm = router.decide("Who is the Hatter?", 5000, warm=True)
    for decision, applies in ((cold, "cold"), (warm, "warm")):
        out = json.loads(json.dumps(decision.to_json()))
        full = out["estimates"]["full"]
        assert full["applies"] == applies and out["cache"]["applies"] == applies
        assert full["usd"] == full[applies]["usd"]
        assert full["cold"]["usd"] == pytest.approx(5256 / 1e6)
        assert full["warm"]["usd"] == pytest.approx((5256 - 4992) / 1e6 + 4992 * 0.1 / 1e6, abs=1e-6)
        assert full["cold"]["cache_write_tokens"] == 4992 and full["warm"]["cached_tokens"] == 4992
        assert out["estimates"]["retrieval"]["applies"] == "cold"
    # Retrieval: 500 + 256 tokens at $1/M = $0.000756. Cold full ($0.005256) loses; warm ($0.000763) is
    # still 1.01x retrieval, over a cached_full_usd_ratio of 1, so retrieval stays.
    assert cold.mode == "retrieval" and warm.mode == "retrieval"
    looser = Router(CACHED, replace(LIMITS, cached_full_usd_ratio=1.05)).decide("Who is the Hatter?", 5000, warm=True)
    assert looser.mode == "full" and "read from the cache at $0.1/M" in looser.reason


def test_the_amortised_break_even_is_where_the_arithmetic_puts_it() -> None:
    # Context 2,000 tokens (cached prefix 1,920), prompt 256, budget 500, output free:
    # retrieval = 756e-6; cold = 2256e-6; warm = (2256 - 1920) e-6 + 1920 * 0.1e-6 = 528e-6;
    # amortised over N = (2256 + (N - 1) * 528) / N <= 756  <=>  N >= 1728 / 228 = 7.58, so N = 8.
    router = Router(CACHED, LIMITS)
    seven = router.decide("When did the gate open?", 2000, expected_questions=7)
    eight = router.decide("When did the gate open?", 2000, expected_questions=8)
    assert seven.cache_applies == eight.cache_applies == "amortised"
    assert seven.estimates["full"].usd == pytest.approx((2256 + 6 * 528) / 7 / 1e6)
    assert seven.mode == "retrieval" and eight.mode == "full"
    assert "over the 8 questions expected" in eight.reason
    with pytest.raises(ConfigError, match="expected_questions"):
        router.decide("x", 2000, expected_questions=0)


def test_escalation_uses_the_warm_price() -> None:
    router = Router(CACHED, replace(LIMITS, max_usd=0.001))
    decision = router.decide("Who?", 5000, warm=True)
    step = router.escalate(decision, 5000)
    # Cold full ($0.005256) is over max_usd; warm ($0.000763) is within it, so escalation may send it.
    assert step is not None and step.mode == "full" and step.cache_applies == "warm"
    cold_step = router.escalate(router.decide("Who?", 5000), 5000)
    assert cold_step is None or cold_step.mode == "retrieval"


def test_full_context_prompt_prefix_is_byte_identical_across_questions(tmp_path, encoder) -> None:
    """Documents in the index's order (whatever order the ids are named in), the question last."""
    from hybridctx import HybridContext
    from hybridctx.routing.answering import full_context
    from hybridctx.llms.prompts import build_messages

    src = tmp_path / "docs.jsonl"
    docs = [{"doc_id": f"d{i}", "text": f"Document {i} says the gate number {i} is painted colour {i * 7}."}
            for i in range(4)]
    src.write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    HybridContext.build([src], tmp_path / "idx", encoder=encoder, show_progress=False)
    hc = HybridContext(*_store_and_encoder(tmp_path / "idx", encoder), path=str(tmp_path / "idx"))
    one = build_messages("What colour is gate 2?", full_context(hc, "cl100k_base", ["d2", "d0", "d3"]), mode="full")
    two = build_messages("Which gate is colour 21?", full_context(hc, "cl100k_base", ["d3", "d2", "d0"]),
                         mode="full")
    assert one[0] == two[0]  # the system prompt
    head_one, q_one = one[1]["content"].rsplit("Question: ", 1)
    head_two, q_two = two[1]["content"].rsplit("Question: ", 1)
    assert head_one.encode() == head_two.encode()  # every byte before the question
    assert q_one.startswith("What colour") and q_two.startswith("Which gate")
    assert head_one.index("d0") < head_one.index("d2") < head_one.index("d3")
    assert "d1" not in head_one


def _store_and_encoder(index_dir, encoder):
    from hybridctx.indexers import LandmarkStore

    return LandmarkStore.load(index_dir), encoder
