"""hybridctx as an evaluation method: one search per question and candidate count."""

from __future__ import annotations

import pytest

from hybridctx.eval.hybrid_method import HybridCtxMethod

DOCS = {
    "a": " ".join(f"Sentence {i} of the first document mentions a harbour and a lighthouse." for i in range(40)),
    "b": "A short second document about the lighthouse keeper, who is called Ada.",
}


@pytest.mark.slow  # encodes a corpus and runs every budget: the full tier only
def test_candidates_are_searched_once_per_question_and_count(encoder) -> None:
    method = HybridCtxMethod(encoder=encoder, show_progress=False)
    method.prepare(DOCS)
    assert method._retriever is not None
    calls: list[int | None] = []
    search = method._retriever.candidates

    def counting(*args, **kwargs):
        calls.append(kwargs.get("budget"))
        return search(*args, **kwargs)

    method._retriever.candidates = counting  # type: ignore[method-assign]
    query = "Who keeps the lighthouse?"
    small = [method.retrieve(query, None, b) for b in (512, 1024, 2048)]
    assert calls == [512]  # 100 hits for every budget up to 2,048: one search serves them all
    method.retrieve(query, None, 4096)
    assert calls == [512, 4096]  # 200 hits: searched again
    assert [method.retrieve(query, None, b) for b in (512, 1024, 2048)] == small
    assert calls == [512, 4096]  # both searches of this question are kept
    method.retrieve("Where is the harbour?", ["a"], 512)
    assert calls == [512, 4096, 512]
    assert len(method._cache) == 1  # only the current question's searches stay
