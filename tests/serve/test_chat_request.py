"""The pieces of a gateway turn that need no server: reading a request, merging limits, holding a stream."""

from __future__ import annotations

from dataclasses import fields

import pytest

from hybridctx.errors import ConfigError
from hybridctx.routing.router import RouteLimits
from hybridctx.serve.chat_request import LIMIT_KEYS, RequestError, parse_chat_request
from hybridctx.serve.indexes import parse_index_specs
from hybridctx.serve.routing_turn import HeldStream, merge_limits


def _body(**extra):
    return {"model": "records", "messages": [{"role": "user", "content": "Who rings the bell?"}], **extra}


def test_last_user_turn_is_the_question_and_earlier_turns_are_history() -> None:
    turn = parse_chat_request({"model": "records", "messages": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Who rings the bell?"},
        {"role": "assistant", "content": "Ines Falk."},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "At what "}, {"type": "text", "text": "time?"}]},
    ], "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 64, "temperature": 0.3,
        "top_p": 0.9, "stop": ["\n\n"]})
    assert turn.question == "At what time?"
    assert turn.history == ({"role": "user", "content": "Who rings the bell?"},
                            {"role": "assistant", "content": "Ines Falk."})
    assert turn.system == "Answer in French.\n\nBe brief."
    assert turn.stream and turn.include_usage and turn.max_tokens == 64 and turn.temperature == 0.3
    assert turn.passed_on == {"top_p": 0.9, "stop": ["\n\n"]}


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"model": "records"}, "messages", "non-empty list"),
    (_body(model=""), "model", "GET /v1/models"),
    (_body(n=2), "n", "must be 1"),
    (_body(tools=[{"type": "function"}]), "tools", "not supported"),
    (_body(stream="yes"), "stream", "true or false"),
    (_body(max_tokens=0), "max_tokens", "at least 1"),
    (_body(temperature=float("nan")), "temperature", "0 to 2"),
    ({"model": "m", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
     "messages[1]", "last message must be the user's question"),
    ({"model": "m", "messages": [{"role": "user", "content": "   "}]}, "messages[0]", "empty"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0]", "only text"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "q"}]}, "messages[0]", "role"),
    (_body(hybridctx={"max_usdd": 0.1}), "hybridctx.max_usdd", "did you mean 'max_usd'"),
    (_body(hybridctx={"budget": -5}), "hybridctx.budget", "at least 1"),
    (_body(hybridctx={"doc_ids": "garden"}), "hybridctx.doc_ids", "list"),
    (_body(hybridctx={"max_usd": "cheap"}), "hybridctx.max_usd", "number"),
    (_body(hybridctx=[1]), "hybridctx", "object"),
])
def test_a_bad_request_names_its_field(body, param, words) -> None:
    with pytest.raises(RequestError) as err:
        parse_chat_request(body)
    assert err.value.status == 400 and err.value.param == param and words in str(err.value)


def test_the_extension_carries_limits_and_options() -> None:
    turn = parse_chat_request(_body(hybridctx={"budget": 300, "doc_ids": ["garden"], "max_usd": 0.01,
                                               "retrieval_share": None, "timeout_s": 5}))
    assert turn.options.budget == 300 and turn.options.doc_ids == ("garden",) and turn.options.timeout_s == 5
    assert turn.options.limits == {"max_usd": 0.01, "retrieval_share": None}


def test_every_limit_a_request_may_set_is_a_route_limit() -> None:
    assert set(LIMIT_KEYS) <= {f.name for f in fields(RouteLimits)}
    assert "answer_tokens" not in LIMIT_KEYS and "prompt_tokens" not in LIMIT_KEYS


def test_a_request_lowers_the_operators_caps_but_never_raises_them() -> None:
    base = RouteLimits(max_usd=0.05, max_budget=2000)
    assert merge_limits(base, {"max_usd": 0.01}).max_usd == 0.01
    assert merge_limits(base, {"max_usd": 5.0}).max_usd == 0.05
    assert merge_limits(base, {"max_budget": 9000}).max_budget == 2000
    assert merge_limits(RouteLimits(), {"max_usd": 5.0}).max_usd == 5.0  # no cap: the request's stands
    merged = merge_limits(base, {"default_budget": 700, "retrieval_share": None}, answer_tokens=64)
    assert (merged.default_budget, merged.retrieval_share, merged.answer_tokens) == (700, None, 64)
    with pytest.raises(ConfigError, match="min_budget"):
        merge_limits(base, {"min_budget": 3000})  # above the operator's max_budget


def test_held_stream_passes_an_answer_after_its_first_sentence() -> None:
    shown: list[str] = []
    held = HeldStream(shown.append)
    for piece in ["The north ", "gate is blue", ". It was ", "painted in May."]:
        held.feed(piece)
    assert shown == ["The north ", "gate is blue", ". It was ", "painted in May."]  # the pieces as they came
    held.finish()
    assert "".join(shown) == "The north gate is blue. It was painted in May."


def test_held_stream_drops_a_refusal_that_is_escalated() -> None:
    shown: list[str] = []
    held = HeldStream(shown.append)
    for piece in ["I cannot ", "answer from the given context."]:
        held.feed(piece)
    assert shown == []
    held.escalate({"mode": "full"})
    held.feed("Ines Falk [1].")
    held.finish()
    assert shown == ["Ines Falk [1]."]


def test_held_stream_shows_a_refusal_that_stays_the_answer() -> None:
    shown: list[str] = []
    held = HeldStream(shown.append)
    held.feed("The context does not mention it.")
    held.finish()  # no escalation was possible: the refusal is the answer
    assert shown == ["The context does not mention it."]


def test_held_stream_separates_an_answer_replaced_after_it_was_shown() -> None:
    shown: list[str] = []
    held = HeldStream(shown.append)
    held.feed("The gate is old. ")  # shown at once: not a refusal
    held.feed("I cannot answer from the given context.")  # the exact sentence later makes ask escalate
    held.escalate({"mode": "full"})
    held.feed("It is blue [1].")
    assert "".join(shown) == "The gate is old. I cannot answer from the given context.\n\nIt is blue [1]."


def test_held_stream_holds_a_first_piece_that_holds_the_refusal_sentence() -> None:
    shown: list[str] = []
    held = HeldStream(shown.append)
    held.feed("The gate is old. I cannot answer from the given context.")
    held.escalate({"mode": "full"})
    held.feed("It is blue [1].")
    assert shown == ["It is blue [1]."]


def test_held_stream_holds_at_most_hold_chars() -> None:
    shown: list[str] = []
    held = HeldStream(shown.append, hold_chars=10)
    held.feed("no sentence end ")
    assert shown == ["no sentence end "]


def test_index_specs() -> None:
    specs = parse_index_specs(["records=/data/idx", "/srv/books.idx"])
    assert [(s.name, str(s.path)) for s in specs] == [("records", "/data/idx"), ("books.idx", "/srv/books.idx")]
    for bad, words in ((["a=/x", "a=/y"], "given twice"), (["a b=/x"], "must start"), (["x="], "no directory"),
                       ([], "at least one")):
        with pytest.raises(Exception, match=words):
            parse_index_specs(bad)
