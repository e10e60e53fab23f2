"""Retrieval options are declared once (``RetrievalOptions``) and reach the retriever unchanged
from every entry point; ``HybridContext.ask`` is the answering pipeline on the facade."""

from __future__ import annotations

import inspect
import json

import pytest
from loopback_server import Reply, completion_body

from hybridctx import ConfigError, HybridContext, RetrievalOptions, RouteLimits
from hybridctx.retrieval.retriever import Retriever
from hybridctx.routing.answering import Answer

DOCS = [
    {"doc_id": "harbour", "text": "The lighthouse keeper rang the brass bell at dusk. Ships in the harbour "
                                  "answered with horns.\n\nThe cartographer drew the northern reef in red ink. "
                                  "The reef map hung in the tavern for years."},
    {"doc_id": "bakery", "text": "The baker on Quay Street sold rye bread to the sailors. Her oven was lit at "
                                 "four. On Sundays she baked honey cakes for the harbour master."},
]


@pytest.fixture(scope="module")
def hc(tmp_path_factory, encoder):
    root = tmp_path_factory.mktemp("options")
    src = root / "docs.jsonl"
    src.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    HybridContext.build([src], root / "idx", encoder=encoder, show_progress=False)
    from hybridctx.indexers import LandmarkStore

    opened = HybridContext(LandmarkStore.load(root / "idx"), encoder, path=str(root / "idx"))
    yield opened
    opened.close()


def _spans(packed) -> list[tuple[str, int, int]]:
    return [(s.doc_id, s.start, s.end) for s in packed.spans]


def test_no_entry_point_redeclares_the_options() -> None:
    fields = set(RetrievalOptions.__dataclass_fields__)
    for method in (HybridContext.retrieve, Retriever.retrieve):
        params = inspect.signature(method).parameters
        keywords = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert keywords == {"options"}, method  # the rest arrive as **overrides, checked against the fields
        assert params["budget"].kind is inspect.Parameter.POSITIONAL_ONLY
    assert {"budget", "tokenizer", "doc_ids", "mode", "order", "reserve", "query_id"} == fields


def test_keywords_an_options_value_and_both_give_the_same_context(hc) -> None:
    query = "Who drew the reef map?"
    by_keywords = hc.retrieve(query, budget=60, order="relevance", doc_ids=["harbour", "bakery"], query_id="q1")
    positional = hc.retrieve(query, 60, order="relevance", doc_ids=["harbour", "bakery"], query_id="q1")
    options = RetrievalOptions(budget=999, order="relevance", doc_ids=["harbour", "bakery"])
    by_value = hc.retrieve(query, options=options, budget=60, query_id="q1")  # keywords replace the value's fields
    assert _spans(by_keywords) == _spans(positional) == _spans(by_value)
    assert by_value.budget == 60 and by_value.query_id == "q1" and by_value.tokens <= 60
    assert any(s.doc_id == "harbour" and "reef" in s.text for s in by_value.spans)
    # The options really reach the retriever: a narrower scope and another layout change the result.
    only_bakery = hc.retrieve(query, options=options, budget=60, doc_ids=["bakery"])
    assert {s.doc_id for s in only_bakery.spans} == {"bakery"}


@pytest.mark.parametrize("call, message", [
    (lambda hc: hc.retrieve("q", bugdet=100), "unknown retrieval option 'bugdet'; did you mean 'budget'?"),
    (lambda hc: hc.retrieve("q", 100, budget=200), "the budget is given twice"),
    (lambda hc: hc.retrieve("q", doc_ids=["harbour"]), "a retrieval needs a token budget"),
    (lambda hc: hc.retrieve("q", 100, order="sideways"), "order 'sideways' is not one of document, relevance, edges"),
    (lambda hc: hc.retrieve("q", 100, mode="fuzzy"), "mode 'fuzzy' is not one of hybrid, dense, lexical"),
    (lambda hc: hc.retrieve("q", 100, doc_ids="harbour"), "a list of document ids, not the string 'harbour'"),
    (lambda hc: hc.retrieve("q", True), "budget True must be a whole number of tokens"),
])
def test_a_bad_option_is_named_before_anything_runs(hc, call, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        call(hc)


def test_ask_on_the_facade_retrieves_with_the_routed_budget(hc, llm_server) -> None:
    from hybridctx.llms import OpenAICompatibleLLM

    llm_server.queue(Reply(body=completion_body("The cartographer drew it [1].")))
    llm = OpenAICompatibleLLM(llm_server.base_url, "test-model", window=8192)
    limits = RouteLimits(default_budget=40, min_budget=20, cheap_full_ratio=1.0)  # retrieval, not full context
    answer = hc.ask("Who drew the reef map?", llm, profile="gpt-4o-mini", limits=limits, session=False)
    assert isinstance(answer, Answer) and answer.mode == "retrieval" and not answer.escalated
    assert answer.citations == (1,) and answer.text.startswith("The cartographer")
    expected = hc.retrieve("Who drew the reef map?", answer.route["budget"], tokenizer=answer.context.tokenizer)
    assert _spans(answer.context) == _spans(expected)
    sent = llm_server.chat_requests()[-1].body["messages"][-1]["content"]
    assert answer.context.context in sent
