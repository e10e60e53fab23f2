"""The LlamaIndex plug-in against real llama-index-core, the real encoder, FAISS and a loopback LLM server."""

from __future__ import annotations

import asyncio
import importlib
import random
import sys

import pytest
from llama_index.core import Document as LIDocument
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from loopback_server import Reply, completion_body

from hybridctx.datatypes import Span
from hybridctx.errors import MissingDependencyError
from hybridctx.integrations.llama_index import BudgetPostprocessor, HybridCtxNodeRetriever, RoutedQueryEngine
from hybridctx.llms import OpenAICompatibleLLM
from hybridctx.packing.packer import render
from hybridctx.packing.tokens import get_counter

pytestmark = pytest.mark.slow

QUESTION = "What words were printed on the label of the little bottle Alice found on the glass table?"
DOC_ID = "alice_in_wonderland.txt"


def joined_tokens(nodes: list[NodeWithScore]) -> int:
    """Tokens of the node texts as LlamaIndex's synthesizers join them (LLM-visible content)."""
    return get_counter("cl100k_base").count("\n\n".join(n.node.get_content(MetadataMode.LLM) for n in nodes))


def test_retriever_returns_text_nodes_with_exact_offsets(alice_hc, alice_text) -> None:
    counter = get_counter("cl100k_base")
    nodes = HybridCtxNodeRetriever(alice_hc, budget=700).retrieve(QUESTION)
    assert nodes and all(isinstance(n.node, TextNode) and n.score is not None for n in nodes)
    for n in nodes:
        node = n.node
        assert alice_text[node.start_char_idx:node.end_char_idx] == node.text
        assert node.metadata["doc_id"] == DOC_ID and node.source_node.node_id == DOC_ID
        assert node.get_content(MetadataMode.LLM) == node.text  # its metadata stays out of prompts
    starts = [n.node.start_char_idx for n in nodes]
    assert starts == sorted(starts)
    spans = [Span(n.node.metadata["doc_id"], 0, 0, 0.0, 0, n.node.text) for n in nodes]
    assert counter.count(render(spans)) <= 700  # rendered with markers, as retrieve() packs them
    assert any("DRINK ME" in n.node.text for n in nodes)


def test_async_retrieve_matches_sync(alice_hc) -> None:
    retriever = HybridCtxNodeRetriever(alice_hc, budget=400)
    sync = retriever.retrieve(QUESTION)
    found = asyncio.run(retriever.aretrieve(QUESTION))
    assert [n.node.node_id for n in found] == [n.node.node_id for n in sync]


def test_async_retrieve_on_an_index_thread(alice_index) -> None:
    retriever = HybridCtxNodeRetriever.from_index(alice_index, budget=400)

    async def both() -> list[list[NodeWithScore]]:
        return list(await asyncio.gather(retriever.aretrieve(QUESTION), retriever.aretrieve("Who is the Hatter?")))

    first, second = asyncio.run(both())
    assert any("DRINK ME" in n.node.text for n in first) and second


def test_postprocessor_drops_nodes_to_fit_an_exact_budget(alice_hc, alice_text) -> None:
    nodes = HybridCtxNodeRetriever(alice_hc, budget=2000).retrieve(QUESTION)
    kept = BudgetPostprocessor(budget=300).postprocess_nodes(nodes, query_str=QUESTION)
    assert 0 < len(kept) < len(nodes)
    assert 200 <= joined_tokens(kept) <= 300
    starts = [n.node.start_char_idx for n in kept]
    assert starts == sorted(starts)
    for n in kept:
        assert alice_text[n.node.start_char_idx:n.node.end_char_idx] == n.node.text
    untouched = [n for n in kept if any(n is m for m in nodes)]
    assert untouched, "nodes that fit whole come back as they were"


def test_postprocessor_packs_llama_index_splitter_nodes(alice_text) -> None:
    document = LIDocument(text=alice_text[:30_000], id_="alice")
    chunks = SentenceSplitter(chunk_size=200, chunk_overlap=40).get_nodes_from_documents([document])
    rng = random.Random(7)
    picked = rng.sample(chunks, 8)
    scored = [NodeWithScore(node=c, score=rng.random()) for c in picked]
    post = BudgetPostprocessor(budget=600)
    kept, context, tokens = post.pack(scored)
    assert tokens == get_counter("cl100k_base").count(context) <= 600
    assert context == "\n\n".join(n.node.get_content(MetadataMode.LLM) for n in kept)
    starts = [n.node.start_char_idx for n in kept]
    assert starts == sorted(starts)
    ends = [n.node.end_char_idx for n in kept]
    assert all(a <= b for a, b in zip(ends, starts[1:]))  # overlapping chunks were merged
    for n in kept:
        assert document.text[n.node.start_char_idx:n.node.end_char_idx] == n.node.text
    # The best-scored chunk that fits whole is in.
    best = max(scored, key=lambda n: n.score or 0.0)
    assert any(best.node.text in n.node.text for n in kept)


def test_query_engine_answers_with_sources_and_route(alice_hc, alice_text, llm_server) -> None:
    llm_server.queue(Reply(body=completion_body("The label said DRINK ME [1].", prompt_tokens=900)))
    llm = OpenAICompatibleLLM(llm_server.base_url, "test-model", window=8192)
    engine = RoutedQueryEngine(hc=alice_hc, llm=llm, profile="gpt-4o-mini", budget=1000)
    response = engine.query(QUESTION)
    assert response.response == "The label said DRINK ME [1]."
    meta = response.metadata
    assert meta["mode"] == "retrieval" and meta["route"]["mode"] == "retrieval"
    assert "not about the whole corpus" in meta["route"]["reason"]
    assert set(meta["route"]["estimates"]) == {"full", "retrieval"}
    assert meta["citations"] == [1] and meta["tokens"]["prompt"] == 900
    assert response.source_nodes and any("DRINK ME" in n.node.text for n in response.source_nodes)
    for n in response.source_nodes:
        assert alice_text[n.node.start_char_idx:n.node.end_char_idx] == n.node.text
    sent = llm_server.chat_requests()[0].body["messages"][-1]["content"]
    assert "DRINK ME" in sent and QUESTION in sent


def test_query_engine_async_goes_full_for_a_whole_book_question(alice_hc, llm_server) -> None:
    llm_server.queue(Reply(body=completion_body("A girl falls into Wonderland [1].")))
    llm = OpenAICompatibleLLM(llm_server.base_url, "test-model", window=200_000)
    engine = RoutedQueryEngine(hc=alice_hc, llm=llm, profile="gpt-4o-mini")
    response = asyncio.run(engine.aquery("Summarise the whole book"))
    assert response.metadata["mode"] == "full" and "whole corpus" in response.metadata["route"]["reason"]
    (source,) = response.source_nodes
    assert (source.node.start_char_idx, source.node.metadata["doc_id"]) == (0, DOC_ID)


def test_missing_llama_index_names_the_extra(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "llama_index" or m.startswith("llama_index.")]:
        monkeypatch.setitem(sys.modules, name, None)  # None makes "import llama_index..." fail
    monkeypatch.delitem(sys.modules, "hybridctx.integrations.llama_index")
    with pytest.raises(MissingDependencyError, match=r"pip install 'hybridctx\[llamaindex\]'"):
        importlib.import_module("hybridctx.integrations.llama_index")
