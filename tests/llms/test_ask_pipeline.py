"""`ask` end to end: a real index, the router, and an OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from loopback_server import Reply, completion_body

from hybridctx import HybridContext
from hybridctx.routing.answering import answer_question
from hybridctx.cli import main
from hybridctx.llms import OpenAICompatibleLLM
from hybridctx.routing.router import RouteLimits

DOCS = [
    {"doc_id": "garden", "text": "The garden has three gates. The north gate is painted blue. "
                                 "The south gate was repaired in May.\n\nThe gardener, Mr. Okafor, waters the roses at dawn."},
    {"doc_id": "house", "text": "The house has a red door. The kitchen faces east. The attic holds old letters."},
]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ask")
    src = root / "docs.jsonl"
    src.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    HybridContext.build([src], root / "idx", show_progress=False)
    return root / "idx"


def test_small_corpus_goes_full_and_cites(index_dir, llm_server) -> None:
    llm_server.queue(Reply(body=completion_body("The north gate is blue [1].")))
    hc = HybridContext.open(index_dir)
    llm = OpenAICompatibleLLM(llm_server.base_url, "test-model", window=8192)
    answer = answer_question(hc, "What colour is the north gate?", llm, profile="gpt-4o-mini")
    assert answer.mode == "full" and not answer.escalated
    assert answer.citations == (1,)
    assert {s.doc_id for s in answer.context.spans} == {"garden", "house"}
    sent = llm_server.chat_requests()[-1].body["messages"][-1]["content"]
    assert "The north gate is painted blue." in sent and "What colour is the north gate?" in sent


def test_unanswerable_retrieval_answer_escalates_once_to_full(index_dir, llm_server) -> None:
    llm_server.queue(Reply(body=completion_body("I cannot answer from the given context.")),
                     Reply(body=completion_body("Mr. Okafor waters the roses [1].")))
    hc = HybridContext.open(index_dir)
    llm = OpenAICompatibleLLM(llm_server.base_url, "test-model", window=8192)
    # A tiny cheap-full ratio forces retrieval first; full context fits the limits for the escalation.
    limits = RouteLimits(default_budget=20, min_budget=10, cheap_full_ratio=1.0)
    answer = answer_question(hc, "Who waters the roses?", llm, profile="gpt-4o-mini", limits=limits)
    assert answer.route["mode"] == "retrieval" and answer.escalated and answer.mode == "full"
    assert answer.escalation["mode"] == "full"
    assert len(llm_server.chat_requests()) == 2
    assert answer.text.startswith("Mr. Okafor")
    out = answer.to_json()
    assert out["tokens"]["context"] == answer.context.tokens and out["escalated"] is True


def test_ask_cli_json(index_dir, llm_server, capsys) -> None:
    llm_server.queue(Reply(body=completion_body("The kitchen faces east [1].", prompt_tokens=120, completion_tokens=7)))
    code = main(["ask", "--index", str(index_dir), "--llm", llm_server.base_url, "--model", "test-model",
                 "--profile", "gpt-4o-mini", "--json", "Which way does the kitchen face?"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"] == "The kitchen faces east [1]." and out["mode"] in ("full", "retrieval")
    assert out["tokens"]["prompt"] == 120 and out["tokens"]["completion"] == 7
    assert out["citations"][0]["marker"] == 1 and out["estimated_usd"] is not None
    assert {"route", "total"} <= set(out["timings_ms"])
