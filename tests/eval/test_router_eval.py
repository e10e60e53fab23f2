"""``hybridctx eval route`` on a tiny corpus: always-full, forced retrieval, totals, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tiny_corpus import write_tiny_corpus

from hybridctx.cli import main
from hybridctx.eval.router_eval import POLICIES, base_budget, full_capacity
from hybridctx.routing.router import Router, RouteLimits, detect_intent

pytestmark = pytest.mark.slow

# A local GPU profile counted in cl100k_base, so the test needs no model tokenizer;
# its KV cache (131,072 bytes per token) makes --max-kv-gib a precise lever.
PROFILES = """
[profiles.tiny-gpu]
extends = "llama-3.1-8b-instruct-vllm-h100"
tokenizer = "cl100k_base"
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_tiny_corpus(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def profiles(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("profiles") / "profiles.toml"
    path.write_text(PROFILES, encoding="utf-8")
    return path


def _route(data: Path, out: Path, *extra: str) -> dict:
    assert main(["eval", "route", "--data", str(data), "--datasets", "tiny,hotpotqa", "--out", str(out),
                 "--min-budget", "16", "--no-progress", *extra]) == 0
    return json.loads((out / "route.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def kimi(data, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("kimi")
    return {"out": out, "json": _route(data, out, "--profile", "kimi", "--budget", "64")}


def test_writes_table_json_and_plot(kimi) -> None:
    out = kimi["out"]
    assert (out / "route.png").stat().st_size > 1000
    table = (out / "route.md").read_text(encoding="utf-8")
    assert "| all | router |" in table and "always-full" in table and "Target:" in table
    assert kimi["json"]["profile"] == "kimi" and kimi["json"]["budget"] == 64


def test_always_full_recall_is_one_when_the_window_fits(kimi) -> None:
    payload = kimi["json"]
    assert len(payload["rows"]) == 3
    for row in payload["rows"]:
        assert row["full_fits"]
        assert row["full"]["recall"] == 1.0 and row["full"]["mode"] == "full"
        assert row["full"]["tokens"] == row["full_tokens"]
        assert row["retrieve"]["tokens"] <= 64
    assert payload["totals"]["all"]["always-full"]["recall"] == 1.0
    # the 94-token manual is at most 2x the budget: full context is cheap, so the router sends it;
    # the 334-token log and the 402-token corpus are not
    modes = {r["id"]: r["router"]["mode"] for r in payload["rows"]}
    assert modes == {"q-first": "full", "q-deep": "retrieval", "q-multi": "retrieval"}


def test_totals_add_up(kimi) -> None:
    payload = kimi["json"]
    rows = payload["rows"]
    key = {"router": "router", "always-full": "full", "always-retrieve": "retrieve"}
    for policy in POLICIES:
        overall = payload["totals"]["all"][policy]
        outs = [r[key[policy]] for r in rows]
        assert overall["questions"] == len(rows)
        assert overall["tokens"] == sum(o["tokens"] for o in outs)
        assert overall["tokens"] == sum(payload["totals"][d][policy]["tokens"] for d in ("tiny", "hotpotqa"))
        assert math.isclose(overall["usd"], sum(o["usd"] for o in outs))
        assert math.isclose(overall["recall"], sum(o["recall"] for o in outs) / len(outs))
        assert math.isclose(overall["full_share"], sum(o["mode"] == "full" for o in outs) / len(outs))
    for row in rows:  # the router's outcome is one of the two fixed policies' outcomes
        assert row["router"] == (row["full"] if row["router"]["mode"] == "full" else row["retrieve"])
    check = payload["checks"]["all"]
    router, full = payload["totals"]["all"]["router"], payload["totals"]["all"]["always-full"]
    assert math.isclose(check["recall_ratio"], router["recall"] / full["recall"])
    assert math.isclose(check["token_ratio"], router["tokens"] / full["tokens"])
    assert check["met"] == (check["recall_ratio"] >= 0.95 and check["token_ratio"] <= 0.15)


def test_limits_that_exclude_full_route_everything_to_retrieval(data, profiles, tmp_path) -> None:
    router = Router("tiny-gpu", RouteLimits(min_budget=16), profiles_file=profiles)
    budget = 64
    smallest_full = router.estimate(94).kv_gib  # the manual, the smallest scope
    retrieval = router.estimate(budget).kv_gib
    assert retrieval < smallest_full
    max_kv = (retrieval + smallest_full) / 2
    payload = _route(data, tmp_path, "--profile", "tiny-gpu", "--profiles", str(profiles), "--budget", str(budget),
                     "--max-kv-gib", f"{max_kv:.6f}")
    assert payload["limits"]["max_kv_gib"] == pytest.approx(max_kv, rel=1e-5)
    for row in payload["rows"]:
        assert row["router"]["mode"] == "retrieval" and row["within_limits"]
        assert row["router"]["tokens"] <= budget
        assert "max_kv_gib" in row["reason"]
        assert row["full"]["recall"] == 1.0  # always-full ignores the user's limits; only the window binds
    assert payload["totals"]["all"]["router"]["full_share"] == 0.0


def test_full_context_beyond_the_window_is_cut_like_truncation(data, profiles, tmp_path) -> None:
    path = tmp_path / "small.toml"
    # 1,000 tokens of window less 256 of prompt and 512 of answer leave 232 for context:
    # the 334-token log and the 402-token corpus do not fit
    path.write_text(PROFILES + "window = 1000\n", encoding="utf-8")
    payload = _route(data, tmp_path / "out", "--profile", "tiny-gpu", "--profiles", str(path), "--budget", "64")
    rows = {r["id"]: r for r in payload["rows"]}
    assert rows["q-first"]["full_fits"] and not rows["q-deep"]["full_fits"] and not rows["q-multi"]["full_fits"]
    assert rows["q-deep"]["full"]["tokens"] <= 232 and rows["q-deep"]["full"]["recall"] == 0.0  # evidence at the end
    # corpus order p0 p1 p2 (63 + 69 + 69 tokens) then 31 of p3's 75: gold p0 found, p3 not
    assert rows["q-multi"]["full"]["recall"] == 0.5
    assert rows["q-deep"]["router"]["mode"] == "retrieval"
    assert "always-full sends their first tokens" in (tmp_path / "out" / "route.md").read_text(encoding="utf-8")
    fitting = payload["totals"]["all, full fits"]
    assert fitting["always-full"]["questions"] == 1 and fitting["always-full"]["recall"] == 1.0
    assert "all" in payload["checks"] and "all, full fits" in payload["checks"]


def test_budget_and_capacity_helpers() -> None:
    router = Router("kimi", RouteLimits(min_budget=128, max_budget=2048))
    assert full_capacity(router) == 131072 - 256 - 512
    assert base_budget(router, None) == 2048 and base_budget(router, 16) == 128


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--profile", "kimmi"], "did you mean 'kimi'"),
        (["--max-usd", "-1"], "max_usd"),
        (["--budget", "0"], "--budget"),
        (["--target-recall", "1.5"], "--target-recall"),
    ],
)
def test_bad_input_exits_2(data, tmp_path, capsys, argv, message) -> None:
    assert main(["eval", "route", "--data", str(data), "--out", str(tmp_path), "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("query", "label"),
    [
        # leval's topic questions end so; counting it as "summarise" sent 13k-token chats in full
        ("What is the first topic we discussed? Only give me the topic name. Do not summarize yourself.", None),
        ("Don't just list every name, explain why", None),
        ("不要总结，告诉我第一章的主角是谁", None),
        ("Please summarize the report, do not list all names", "summarise"),
        ("Without summarizing, what is the overall tone?", "whole-corpus"),
    ],
)
def test_negated_intent_phrases_do_not_count(query, label) -> None:
    assert detect_intent(query) == label
