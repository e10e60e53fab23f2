"""The LLM-free retrieval confidence (issue 14, part 3): its three signals, the budget it picks, escalation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridctx.retrieval.confidence import Confidence, adapt, budget_range, content_words, measure
from hybridctx.errors import ConfigError
from hybridctx.routing.router import RouteLimits, Router

pytestmark = pytest.mark.slow


def _rrf(dense: list[int], lexical: list[int]) -> dict:
    from hybridctx.retrieval.fusion import reciprocal_rank_fusion

    rows, scores = reciprocal_rank_fusion([np.array(dense), np.array(lexical)])
    return {"dense": np.array(dense), "lexical": np.array(lexical), "fused": scores, "rows": rows}


def test_content_words_drop_stop_words_and_pair_han_characters() -> None:
    assert content_words("What did the White Rabbit take out of its waistcoat-pocket?") == (
        "white", "rabbit", "waistcoat", "pocket")
    assert content_words("贾宝玉是谁") == ("贾宝", "宝玉", "玉是", "是谁")
    assert content_words("Who is it?") == ()


def test_agreeing_searches_are_confident_and_disagreeing_ones_are_not() -> None:
    agree = _rrf(list(range(0, 40)), [1, 0, 3, 2, 5, 4, 7, 6, 9, 8] + list(range(100, 130)))
    disagree = _rrf(list(range(0, 40)), list(range(500, 540)))
    sure = measure("white rabbit", agree, ["The White Rabbit ran."])
    unsure = measure("white rabbit", disagree, ["Nothing here."])
    assert sure.agreement == 1.0 and unsure.agreement == 0.0
    assert sure.peak > 0.5 > unsure.peak  # a hit both found scores ~2/61; the next tier ~1/71
    assert sure.coverage == 1.0 and unsure.coverage == 0.0
    assert sure.score == pytest.approx(0.35 * sure.peak + 0.35 + 0.30)
    assert 0.0 <= unsure.score < 0.2 < 0.8 < sure.score <= 1.0
    # Near hits count: the lexical search found the landmark next to each dense one.
    assert measure("x", _rrf([10, 20, 30], [12, 21, 33]), []).agreement == pytest.approx(2 / 3)
    assert measure("x", {"fused": np.zeros(0)}, []).score == pytest.approx(0.30)  # no hits; no words


def test_the_budget_moves_between_the_limits_with_the_confidence() -> None:
    router = Router("kimi", RouteLimits(adaptive_budget=True, retrieval_share=None))
    decision = router.decide("Who is the Hatter?", 100_000)
    assert decision.mode == "retrieval" and decision.budget == 4096
    assert budget_range(router, decision.budget) == (2048, 6144)
    sure = adapt(router, decision, Confidence(1, 1, 1, 1.0), 100_000)
    unsure = adapt(router, decision, Confidence(0, 0, 0, 0.0), 100_000)
    middle = adapt(router, decision, Confidence(0.5, 0.5, 0.5, 0.5), 100_000)
    assert (sure.budget, middle.budget, unsure.budget) == (2048, 4096, 6144)
    assert sure.estimates["retrieval"].input_tokens == 2048 + 256
    assert "retrieval confidence 1.00" in sure.reason and "picks 2,048 tokens in 2,048..6,144" in sure.reason
    # The limits still rule: a cap on dollars bounds the unsure budget.
    capped = Router("kimi", RouteLimits(adaptive_budget=True, retrieval_share=None, max_usd=0.0045))
    low = adapt(capped, capped.decide("Who?", 100_000), Confidence(0, 0, 0, 0.0), 100_000)
    assert low.budget < 6144 and low.estimates["retrieval"].usd <= 0.0045


def test_low_confidence_escalates_to_full_only_when_it_fits_the_limits() -> None:
    limits = RouteLimits(adaptive_budget=True, escalate_below=0.3, retrieval_share=None)
    router = Router("kimi", limits)
    decision = router.decide("Who is the Hatter?", 30_000)
    step = adapt(router, decision, Confidence(0, 0, 0.2, 0.06), 30_000)
    assert step.mode == "full" and "below escalate_below 0.3" in step.reason
    assert adapt(router, decision, Confidence(0.5, 0.5, 0.5, 0.5), 30_000).mode == "retrieval"
    too_big = adapt(router, router.decide("Who?", 500_000), Confidence(0, 0, 0, 0.0), 500_000)
    assert too_big.mode == "retrieval" and too_big.budget == 6144  # full exceeds the window
    with pytest.raises(ConfigError, match="escalate_below"):
        RouteLimits(escalate_below=1.5)
    with pytest.raises(ConfigError, match="adaptive_low"):
        RouteLimits(adaptive_low=1.2)


def test_route_with_adaptive_budget_on_a_real_index(tmp_path, encoder, alice_text, capsys) -> None:
    from hybridctx import HybridContext
    from hybridctx.cli import main

    src = tmp_path / "alice.jsonl"
    src.write_text(json.dumps({"doc_id": "alice", "text": alice_text}) + "\n", encoding="utf-8")
    HybridContext.build([src], tmp_path / "idx", encoder=encoder, show_progress=False)
    hc = HybridContext(*_loaded(tmp_path / "idx", encoder), path=str(tmp_path / "idx"))
    limits = RouteLimits(adaptive_budget=True, retrieval_share=None, default_budget=1024, cheap_full_ratio=1.0)
    fixed = hc.route("What did the White Rabbit take out of its waistcoat-pocket?", profile="kimi",
                     limits=RouteLimits(retrieval_share=None, default_budget=1024, cheap_full_ratio=1.0))
    sure = hc.route("What did the White Rabbit take out of its waistcoat-pocket?", profile="kimi", limits=limits)
    assert fixed.mode == sure.mode == "retrieval" and fixed.budget == 1024
    assert 512 <= sure.budget <= 1536 and "retrieval confidence" in sure.reason
    assert main(["route", "What did the White Rabbit take out of its waistcoat-pocket?", "--index",
                 str(tmp_path / "idx"), "--profile", "kimi", "--adaptive-budget", "--json"]) == 0
    assert "retrieval confidence" in json.loads(capsys.readouterr().out)["reason"]


def _loaded(index_dir, encoder):
    from hybridctx.indexers import LandmarkStore

    return LandmarkStore.load(index_dir), encoder
