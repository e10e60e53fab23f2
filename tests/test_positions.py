"""Positional questions: detection, and retrieval that covers the named end of a document."""

from __future__ import annotations

import pytest

from hybridctx.datatypes import Document
from hybridctx.errors import ConfigError
from hybridctx.positions import detect_position
from hybridctx.retrieval import RetrievalConfig, Retriever


@pytest.mark.parametrize(
    ("question", "anchor"),
    [
        ("What is the first topic we discussed? Only give me the topic name.", "start"),
        ("What was the third subject of the conversation?", "start"),
        ("What is said at the start of the conversation?", "start"),
        ("第三个话题是什么？", "start"),
        ("故事的开头讲了什么", "start"),
        ("How does the story end?", "end"),
        ("What is the last item on the agenda?", "end"),
        ("What happens at the end?", "end"),
        ("最后一章讲了什么", "end"),
    ],
)
def test_positional_questions_are_detected(question: str, anchor: str) -> None:
    found = detect_position(question)
    assert found is not None and found.anchor == anchor


@pytest.mark.parametrize(
    "question",
    [
        "When did Caroline first go to the LGBTQ support group?",  # "first" qualifies an event
        "What did John's team win at the end of the season?",  # time, not the text
        "Who was the first president of the club?",
        "不结丁髷而放开头发的风潮在什么时候开始盛行？",  # 开头 inside 放开头发
        "九命奇冤最初发表在哪里？",  # 最初 = originally
    ],
)
def test_content_questions_are_not_positional(question: str) -> None:
    assert detect_position(question) is None


def _chat() -> str:
    topics = [
        "Let us talk about beekeeping. Bees need a dry hive and a calm keeper.",
        "Now the weather in Lisbon. It rains mostly in winter there.",
        "Next, chess openings. The Sicilian defence is sharp and popular.",
    ]
    filler = " ".join(f"Another topic we discussed was item {i} of the shopping list." for i in range(120))
    return " ".join(topics) + " " + filler + " Finally we said goodbye and promised to meet in spring."


def _retriever(encoder, weight: float) -> Retriever:
    from hybridctx.indexers import LandmarkStore
    from hybridctx.indexing import index_documents

    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents([Document("chat", _chat())], store, encoder, show_progress=False)
    return Retriever(store, encoder, RetrievalConfig(position_weight=weight))


def test_first_topic_question_packs_the_start(encoder) -> None:
    question = "What is the first topic we discussed?"
    on = _retriever(encoder, 2.0).retrieve(question, budget=300)
    assert "Let us talk about beekeeping." in on.context
    assert on.spans[0].start == 0 and on.tokens <= 300
    assert "position" in on.timings_ms
    # Without the positional ranking the question matches nothing in particular.
    off = _retriever(encoder, 0.0).retrieve(question, budget=300)
    assert "Let us talk about beekeeping." not in off.context


def test_last_question_packs_the_end(encoder) -> None:
    packed = _retriever(encoder, 2.0).retrieve("What is the last topic of the conversation?", budget=80)
    assert "promised to meet in spring." in packed.context
    assert packed.tokens <= 80


def test_negative_position_weight_is_refused() -> None:
    with pytest.raises(ConfigError, match="position_weight -1 must be >= 0"):
        RetrievalConfig(position_weight=-1)
