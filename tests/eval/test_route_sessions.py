"""``eval route --session N`` and ``--adaptive-budget`` on a tiny set: cached always-full priced by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridctx.cli import main

pytestmark = pytest.mark.slow

SENTENCES = [f"Valve {i} on line {i % 7} was checked by inspector number {i * 3} on day {i}." for i in range(120)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sessions")
    text = " ".join(SENTENCES)
    rows = []
    for k, i in enumerate((5, 60, 110)):
        start = text.index(SENTENCES[i])
        rows.append({"id": f"q{k}", "doc_id": "plant", "question": f"Who checked valve {i}?",
                     "answers": [str(i * 3)], "evidence": [SENTENCES[i]],
                     "evidence_offsets": [[start, start + len(SENTENCES[i])]]})
    (root / "plant").mkdir()
    (root / "plant" / "docs.jsonl").write_text(json.dumps({"doc_id": "plant", "text": text}) + "\n", encoding="utf-8")
    (root / "plant" / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


def _run(data: Path, out: Path, *extra: str) -> dict:
    assert main(["eval", "route", "--data", str(data), "--datasets", "plant", "--out", str(out), "--profile", "kimi",
                 "--no-progress", *extra]) == 0
    return json.loads((out / "route.json").read_text(encoding="utf-8"))


def test_a_session_bills_always_full_cold_once_then_warm(data, tmp_path) -> None:
    from hybridctx.routing.profiles import get_profile, profile_counter

    payload = _run(data, tmp_path, "--session", "3")
    text = (data / "plant" / "docs.jsonl").read_text(encoding="utf-8")
    full = profile_counter(get_profile("kimi")).count(json.loads(text)["text"])
    assert full > 1024  # Kimi caches it (cache_min_tokens 1024)
    # Kimi: $0.60/M input, $0.15/M on a hit, $2.50/M output; 256 prompt and 512 answer tokens per request.
    answer = 512 * 2.50 / 1e6
    cold = (full + 256) * 0.60 / 1e6 + answer
    warm = 256 * 0.60 / 1e6 + full * 0.15 / 1e6 + answer
    totals = payload["totals"]["plant"]
    assert payload["session"] == 3 and totals["always-full"]["questions"] == 3
    assert totals["always-full"]["usd"] == pytest.approx(cold + 2 * warm)
    # The corpus is under 2x the router's budget, so it goes full each time, and is billed like always-full.
    assert totals["router"]["full_share"] == 1.0
    assert totals["router"]["usd"] == pytest.approx(cold + 2 * warm)
    check = payload["session_checks"]["plant"]
    assert check["recall_ratio"] == pytest.approx(1.0) and check["usd_ratio"] == pytest.approx(1.0)
    assert check["met"] is False  # same dollars as cached always-full, not 40% of them
    assert "Session workload: 3 questions per document" in (tmp_path / "route.md").read_text(encoding="utf-8")
    assert (tmp_path / "route_usd.png").stat().st_size > 1000


def test_adaptive_budget_changes_the_router_budgets_only(data, tmp_path) -> None:
    fixed = _run(data, tmp_path / "fixed", "--budget", "256", "--min-budget", "64")
    adaptive = _run(data, tmp_path / "adaptive", "--budget", "256", "--min-budget", "64", "--adaptive-budget")
    assert [r["retrieve"] for r in fixed["rows"]] == [r["retrieve"] for r in adaptive["rows"]]
    budgets = [r["router"]["budget"] for r in adaptive["rows"]]
    assert all(128 <= b <= 384 for b in budgets) and all("retrieval confidence" in r["reason"] for r in adaptive["rows"])
    assert main(["eval", "route", "--data", str(data), "--datasets", "plant", "--out", str(tmp_path / "x"),
                 "--escalate-below", "0.3"]) == 2
