"""A profile's effective context: the router treats a request beyond it as not reliable, however large the window."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hybridctx.errors import ConfigError
from hybridctx.routing.profiles import get_profile
from hybridctx.routing.router import RouteLimits, Router


def test_shipped_llama_uses_rulers_effective_length() -> None:
    llama = get_profile("llama-3.1-8b-instruct-vllm-h100")
    assert llama.window == 131072 and llama.effective_context == 32768
    assert get_profile("kimi").effective_context is None  # no published measurement: the whole window


def test_full_context_beyond_the_effective_context_is_not_sent() -> None:
    llama = get_profile("llama-3.1-8b-instruct-vllm-h100")
    limits = RouteLimits(prefer_full_under_tokens=100_000)  # full whenever it meets the limits
    whole_window = Router(replace(llama, effective_context=None), limits)
    assert whole_window.decide("Who signed the lease?", 60_000).mode == "full"

    router = Router(llama, limits)
    decision = router.decide("Who signed the lease?", 60_000)
    assert decision.mode == "retrieval" and "effective context" in decision.reason
    assert decision.budget + limits.prompt_tokens <= llama.effective_context
    # Self-Route's escalation stays within it too: a larger retrieval budget, not the 60k document.
    step = router.escalate(decision, 60_000)
    assert step is not None and step.mode == "retrieval" and step.budget > decision.budget
    assert step.budget + limits.prompt_tokens <= llama.effective_context
    # A document that fits the effective context still goes whole.
    assert router.decide("Who signed the lease?", 20_000).mode == "full"


@pytest.mark.parametrize("value", [0, -5, 1.5, True])
def test_a_bad_effective_context_is_refused(value) -> None:
    with pytest.raises(ConfigError, match="effective_context"):
        replace(get_profile("kimi"), effective_context=value)
