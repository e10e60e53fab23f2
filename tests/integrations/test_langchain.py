"""The LangChain plug-in against real langchain-core, the real encoder, FAISS and a loopback LLM server."""

from __future__ import annotations

import asyncio
import importlib
import sys

import pytest
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from loopback_server import Reply, completion_body

from hybridctx.errors import ConfigError, MissingDependencyError
from hybridctx.integrations.langchain import BudgetPacker, CostRouter, HybridCtxRetriever, as_runnable
from hybridctx.llms import OpenAICompatibleLLM
from hybridctx.routing.profiles import get_profile, profile_counter
from hybridctx.ingest.segmentation import split_sentences
from hybridctx.packing.tokens import get_counter

pytestmark = pytest.mark.slow

QUESTION = "What words were printed on the label of the little bottle Alice found on the glass table?"
PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only, citing markers such as [1]."),
    ("human", "Context:\n{context}\n\nQuestion: {question}"),
])


def test_retriever_returns_exact_spans_in_document_order_within_budget(alice_hc, alice_text) -> None:
    counter = get_counter("cl100k_base")
    retriever = HybridCtxRetriever(hc=alice_hc, budget=700)
    docs = retriever.invoke(QUESTION)
    assert docs and all(isinstance(d, Document) for d in docs)
    for marker, doc in enumerate(docs, 1):
        meta = doc.metadata
        assert alice_text[meta["start"]:meta["end"]] == doc.page_content
        assert meta["doc_id"] == "alice_in_wonderland.txt" and meta["marker"] == marker
        assert meta["tokens"] == counter.count(doc.page_content) and meta["query"] == QUESTION
        assert {"score", "trimmed"} <= set(meta)
    starts = [d.metadata["start"] for d in docs]
    assert starts == sorted(starts)
    assert sum(counter.count(d.page_content) for d in docs) <= 700
    assert retriever.retrieve_packed(QUESTION).tokens <= 700
    assert any("DRINK ME" in d.page_content for d in docs)


def test_async_retriever_matches_the_sync_one(alice_hc) -> None:
    retriever = HybridCtxRetriever(hc=alice_hc, budget=400)
    sync = retriever.invoke(QUESTION)
    found = asyncio.run(retriever.ainvoke(QUESTION))
    assert [d.id for d in found] == [d.id for d in sync]
    assert [d.page_content for d in found] == [d.page_content for d in sync]


def test_packer_packs_retrieved_documents_to_a_smaller_exact_budget(alice_hc, alice_text) -> None:
    counter = get_counter("cl100k_base")
    out = (HybridCtxRetriever(hc=alice_hc, budget=1500) | BudgetPacker(budget=250)).invoke(QUESTION)
    assert out["tokens"] == counter.count(out["context"]) <= 250
    assert out["tokens"] >= 150  # trimmed to whole sentences rather than wasting the budget
    assert out["question"] == QUESTION and out["dropped"]
    starts = [d.metadata["start"] for d in out["documents"]]
    assert starts == sorted(starts)
    for marker, doc in enumerate(out["documents"], 1):
        assert alice_text[doc.metadata["start"]:doc.metadata["end"]] == doc.page_content
        assert doc.metadata["marker"] == marker and f"[{marker}] alice_in_wonderland.txt" in out["context"]


def test_packer_takes_any_documents(alice_text) -> None:
    counter = get_counter("cl100k_base")
    chapter = alice_text[1000:9000]
    # As a LangChain splitter with add_start_index=True writes them, out of order and overlapping.
    docs = [
        Document(page_content=chapter[3000:4200], metadata={"source": "alice.txt", "start_index": 3000}),
        Document(page_content=chapter[0:1500], metadata={"source": "alice.txt", "start_index": 0}),
        Document(page_content=chapter[1200:2600], metadata={"source": "alice.txt", "start_index": 1200}),
        Document(page_content="A note without any offsets. It stays where it was given.", metadata={}),
    ]
    out = BudgetPacker(budget=5000).invoke(docs)
    # Offsets move past the whitespace at a piece's edges, which is never packed.
    lead = [len(t) - len(t.lstrip()) for t in (chapter, chapter[3000:])]
    assert [d.metadata.get("start_index") for d in out["documents"]] == [lead[0], 3000 + lead[1], None]
    merged = out["documents"][0]
    assert merged.page_content == chapter[0:2600].strip() and merged.metadata["merged"] == 2
    assert out["context"].endswith("[3] piece 4\nA note without any offsets. It stays where it was given.")
    # A small budget cuts a document to the whole sentences at its start that fit.
    small = BudgetPacker(budget=60, markers=False).invoke([docs[1]])
    (cut,) = small["documents"]
    assert cut.metadata["trimmed"] and chapter.startswith(cut.page_content)
    ends = {1000 + e for _, e in split_sentences(chapter[:1500])}
    assert 1000 + len(cut.page_content) in ends
    assert small["tokens"] == counter.count(small["context"]) <= 60


def test_lcel_chain_retriever_packer_prompt_llm_end_to_end(alice_hc, llm_server) -> None:
    llm_server.queue(Reply(body=completion_body("The label said DRINK ME [1].", prompt_tokens=300)))
    llm = as_runnable(OpenAICompatibleLLM(llm_server.base_url, "test-model", window=8192))
    chain = HybridCtxRetriever(hc=alice_hc, budget=1200) | BudgetPacker(budget=500) | PROMPT | llm | StrOutputParser()
    assert chain.invoke(QUESTION) == "The label said DRINK ME [1]."
    (request,) = llm_server.chat_requests()
    messages = request.body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "DRINK ME" in messages[1]["content"] and QUESTION in messages[1]["content"]
    assert "[1] alice_in_wonderland.txt" in messages[1]["content"]


def test_parallel_map_chain_from_an_index_thread_or_in_place(alice_index, alice_hc, llm_server) -> None:
    llm_server.queue(Reply(body=completion_body("DRINK ME [1].")), Reply(body=completion_body("DRINK ME [1].")))
    llm = as_runnable(OpenAICompatibleLLM(llm_server.base_url, "test-model", window=8192))
    packer = BudgetPacker(budget=400)
    # LangChain runs the branches of a parallel map on a thread pool.
    retriever = HybridCtxRetriever.from_index(alice_index, budget=800)
    chain = {"context": retriever, "question": RunnablePassthrough()} | packer | PROMPT | llm | StrOutputParser()
    assert chain.invoke(QUESTION) == "DRINK ME [1]."
    assert asyncio.run(chain.ainvoke(QUESTION)) == "DRINK ME [1]."
    assert all("DRINK ME" in r.body["messages"][1]["content"] for r in llm_server.chat_requests())
    # An index opened from disk also works in place from LangChain's worker threads.
    in_place = {"context": HybridCtxRetriever(hc=alice_hc), "question": RunnablePassthrough()} | packer
    assert "DRINK ME" in in_place.invoke(QUESTION)["context"]


def test_cost_router_says_why(alice_hc, llm_server) -> None:
    counter = profile_counter(get_profile("gpt-4o-mini"))  # contexts are counted as that model counts
    router = CostRouter(hc=alice_hc, profile="gpt-4o-mini")
    whole = router.invoke("Summarise the whole book")
    assert whole["mode"] == "full" and "whole corpus" in whole["reason"]
    assert whole["tokens"] > 30_000 and whole["estimates"]["full"]["tokens"] > whole["tokens"]
    local = router.invoke({"question": QUESTION, "user": "kept"})
    assert local["mode"] == "retrieval" and local["user"] == "kept"
    assert "not about the whole corpus" in local["reason"] and str(local["budget"]) in local["reason"].replace(",", "")
    assert local["tokens"] == counter.count(local["context"]) <= local["budget"]
    assert set(local["estimates"]) == {"full", "retrieval"} and local["decision"].mode == "retrieval"

    llm_server.queue(Reply(body=completion_body("DRINK ME [2].")))
    llm = as_runnable(OpenAICompatibleLLM(llm_server.base_url, "test-model", window=8192))
    assert (router | PROMPT | llm | StrOutputParser()).invoke(QUESTION) == "DRINK ME [2]."
    assert asyncio.run(router.ainvoke(QUESTION))["mode"] == "retrieval"


def test_as_runnable_reports_usage_and_refuses_non_llms(llm_server) -> None:
    llm_server.queue(Reply(body=completion_body("hi", prompt_tokens=9, completion_tokens=1)))
    message = as_runnable(OpenAICompatibleLLM(llm_server.base_url, "test-model", window=8192)).invoke("Hello")
    assert message.content == "hi" and message.usage_metadata["input_tokens"] == 9
    assert llm_server.chat_requests()[0].body["messages"] == [{"role": "user", "content": "Hello"}]
    with pytest.raises(ConfigError, match="load_llm"):
        as_runnable(object())


def test_missing_langchain_names_the_extra(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "langchain_core" or m.startswith("langchain_core.")]:
        monkeypatch.setitem(sys.modules, name, None)  # None makes "import langchain_core..." fail
    monkeypatch.delitem(sys.modules, "hybridctx.integrations.langchain")
    with pytest.raises(MissingDependencyError, match=r"pip install 'hybridctx\[langchain\]'"):
        importlib.import_module("hybridctx.integrations.langchain")
    import hybridctx.integrations as integrations

    monkeypatch.delattr(integrations, "langchain", raising=False)
    with pytest.raises(MissingDependencyError, match="langchain-core"):
        integrations.HybridCtxRetriever  # noqa: B018
