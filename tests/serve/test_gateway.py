"""`hybridctx serve` end to end: the official `openai` client, the gateway under uvicorn on 127.0.0.1,
real indexes (packaged encoder), and the loopback OpenAI-compatible upstream."""

from __future__ import annotations

import logging
from typing import Any

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import httpx  # noqa: E402  (a dependency of fastapi's test stack and of openai)
from loopback_server import Reply, completion_body, delta_chunk, echo_authorization  # noqa: E402
from serve_helpers import DOC_TEXT, FACTS, FORCE_FULL, FORCE_RETRIEVAL, client_for  # noqa: E402

pytestmark = pytest.mark.slow

QUESTION = "What colour is the north gate of the walled garden?"


def _ask(client: Any, *, stream: bool, limits: dict[str, Any] | None = None, model: str = "records",
         messages: list[dict[str, Any]] | None = None) -> tuple[str, dict[str, Any], list[Any]]:
    """(answer text, hybridctx extension, raw chunks or [response]) for one question."""
    messages = messages or [{"role": "user", "content": QUESTION}]
    extra = {"extra_body": {"hybridctx": limits}} if limits else {}
    if not stream:
        response = client.chat.completions.create(model=model, messages=messages, **extra)
        return response.choices[0].message.content, response.model_extra["hybridctx"], [response]
    chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True, **extra))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, (chunks[-1].model_extra or {})["hybridctx"], chunks


def _queue_answer(llm_server: Any, text: str, *, stream: bool) -> None:
    if stream:
        words = text.split(" ")
        pieces = [w + " " for w in words[:-1]] + [words[-1]]
        llm_server.queue(Reply(events=[delta_chunk(p) for p in pieces] + [delta_chunk(None, finish_reason="stop")]))
    else:
        llm_server.queue(Reply(body=completion_body(text, prompt_tokens=900, completion_tokens=9)))


def test_models_are_the_indexes_and_health_answers(gateway) -> None:
    served = gateway()
    client = client_for(served)
    assert [m.id for m in client.models.list()] == ["records", "note"]
    assert client.models.retrieve("note").id == "note"
    assert httpx.get(f"{served.url}/health").json()["status"] == "ok"
    with pytest.raises(openai.NotFoundError, match="does not exist; this gateway serves: records, note"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_retrieval_answer_is_routed_and_cited(gateway, llm_server, indexes, stream: bool) -> None:
    client = client_for(gateway())
    _queue_answer(llm_server, "The north gate is cobalt blue [1].", stream=stream)
    text, ext, _ = _ask(client, stream=stream, limits=FORCE_RETRIEVAL)
    assert text == "The north gate is cobalt blue [1]."  # the upstream's answer, unchanged
    assert ext["version"] == 1 and ext["index"] == "records"
    assert ext["mode"] == "retrieval" and ext["route"]["mode"] == "retrieval" and not ext["escalated"]
    assert "retrieval at 96 tokens" in ext["route"]["reason"]
    assert set(ext["route"]["estimates"]) == {"full", "retrieval"}
    assert ext["route"]["estimates"]["retrieval"]["usd"] < ext["route"]["estimates"]["full"]["usd"]
    assert ext["context_tokens"] <= 96 and ext["upstream_calls"] == 1
    [cited] = ext["citations"]
    assert cited["marker"] == 1 and cited["doc_id"] == "garden" and FACTS["garden"] in cited["text"]
    assert indexes["records"].store.text("garden")[cited["start"]:cited["end"]] == cited["text"]
    sent = llm_server.chat_requests()[-1].body
    assert sent["model"] == "test-model" and sent["stream"] is stream
    prompt = sent["messages"][-1]["content"]
    assert FACTS["garden"] in prompt and QUESTION in prompt
    assert FACTS["harbour"] not in prompt and FACTS["library"] not in prompt  # only the packed spans went
    assert sent["messages"][0]["role"] == "system" and "[1]" in sent["messages"][0]["content"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_full_context_answer_sends_every_document(gateway, llm_server, stream: bool) -> None:
    client = client_for(gateway())
    _queue_answer(llm_server, "It is cobalt blue [1].", stream=stream)
    text, ext, _ = _ask(client, stream=stream, limits=FORCE_FULL)
    assert text == "It is cobalt blue [1]."
    assert ext["mode"] == "full" and ext["route"]["mode"] == "full"
    assert [s["doc_id"] for s in ext["spans"]] == ["garden", "harbour", "library"]
    garden = ext["spans"][0]
    assert garden["start"] == 0 and garden["end"] == len(DOC_TEXT["garden"])  # a span is the whole document
    assert garden["truncated"] and len(garden["text"]) == 4000  # its text cut to span_chars in the extension
    assert ext["citations"][0]["doc_id"] == "garden"
    prompt = llm_server.chat_requests()[-1].body["messages"][-1]["content"]
    assert all(fact in prompt for fact in FACTS.values())


def test_small_corpus_goes_full_by_default(gateway, llm_server) -> None:
    client = client_for(gateway())
    _queue_answer(llm_server, "Biscuit [1].", stream=False)
    text, ext, [response] = _ask(client, stream=False, model="note",
                                 messages=[{"role": "user", "content": "What is the cat called?"}])
    assert ext["mode"] == "full" and "retrieval saves little" in ext["route"]["reason"]
    assert ext["citations"][0]["text"].endswith("Biscuit.") and not ext["citations"][0]["truncated"]
    assert response.usage.prompt_tokens == 900 and response.usage.completion_tokens == 9  # the upstream's usage
    prompt = llm_server.chat_requests()[-1].body["messages"][-1]["content"]
    assert "Biscuit" in prompt and "cobalt" not in prompt  # the model name picked the index


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_unanswerable_retrieval_escalates_to_full_and_the_refusal_is_never_shown(gateway, llm_server,
                                                                                  stream: bool) -> None:
    client = client_for(gateway())
    _queue_answer(llm_server, "I cannot answer from the given context.", stream=stream)
    _queue_answer(llm_server, "Ines Falk rings the copper bell [2].", stream=stream)
    text, ext, chunks = _ask(client, stream=stream, limits=FORCE_RETRIEVAL,
                             messages=[{"role": "user", "content": "Who rings the bell, and when?"}])
    assert text == "Ines Falk rings the copper bell [2]."
    assert ext["route"]["mode"] == "retrieval" and ext["escalated"] and ext["mode"] == "full"
    assert ext["escalation"]["mode"] == "full" and "could not answer" in ext["escalation"]["reason"]
    assert ext["upstream_calls"] == 2 and ext["citations"][0]["doc_id"] == "harbour"
    first, second = llm_server.chat_requests()[-2:]
    assert FACTS["library"] not in first.body["messages"][-1]["content"]
    assert FACTS["library"] in second.body["messages"][-1]["content"]  # the escalation sent everything
    if stream:
        assert not any("cannot" in (c.choices[0].delta.content or "") for c in chunks if c.choices)


def test_stream_shape_usage_chunk_and_role(gateway, llm_server) -> None:
    client = client_for(gateway())
    _queue_answer(llm_server, "The gate is cobalt blue [1].", stream=True)
    chunks = list(client.chat.completions.create(
        model="records", messages=[{"role": "user", "content": QUESTION}], stream=True,
        stream_options={"include_usage": True}, extra_body={"hybridctx": FORCE_RETRIEVAL}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and all(c.model == "records" for c in chunks)
    pieces = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert pieces == ["The ", "gate ", "is ", "cobalt ", "blue ", "[1]."]  # one chunk per upstream piece
    finish, last = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == "stop" and "hybridctx" not in (finish.model_extra or {})
    assert last.choices == [] and last.usage.total_tokens > 0 and last.model_extra["hybridctx"]["mode"] == "retrieval"


def test_chat_history_and_system_prompt_reach_the_upstream(gateway, llm_server) -> None:
    client = client_for(gateway())
    _queue_answer(llm_server, "À midi [1].", stream=False)
    _ask(client, stream=False, limits=FORCE_RETRIEVAL, messages=[
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Who rings the copper bell in the harbour?"},
        {"role": "assistant", "content": "Ines Falk."},
        {"role": "user", "content": "At what time does the harbour master ring it?"},
    ])
    sent = llm_server.chat_requests()[-1].body
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"].endswith("\n\nAnswer in French.")
    assert sent["messages"][1:3] == [{"role": "user", "content": "Who rings the copper bell in the harbour?"},
                                     {"role": "assistant", "content": "Ines Falk."}]
    assert "At what time" in sent["messages"][3]["content"] and FACTS["harbour"] in sent["messages"][3]["content"]
    assert sent["temperature"] == 0.0  # ask's greedy default when the client gives none


def test_sampling_settings_and_max_tokens_pass_on(gateway, llm_server) -> None:
    client = client_for(gateway())
    _queue_answer(llm_server, "Blue [1].", stream=False)
    client.chat.completions.create(model="note", messages=[{"role": "user", "content": "What colour?"}],
                                   temperature=0.7, top_p=0.5, seed=3, max_tokens=40)
    sent = llm_server.chat_requests()[-1].body
    assert (sent["temperature"], sent["top_p"], sent["seed"], sent["max_tokens"]) == (0.7, 0.5, 3, 40)


def test_a_bad_request_is_an_openai_400(gateway, llm_server) -> None:
    served = gateway()
    client = client_for(served)
    with pytest.raises(openai.BadRequestError, match="did you mean 'max_usd'") as err:
        client.chat.completions.create(model="records", messages=[{"role": "user", "content": "q"}],
                                       extra_body={"hybridctx": {"max_usdd": 1}})
    assert err.value.body["param"] == "hybridctx.max_usdd"
    with pytest.raises(openai.BadRequestError, match="no document|unknown document|not in the index"):
        client.chat.completions.create(model="records", messages=[{"role": "user", "content": "q"}],
                                       extra_body={"hybridctx": {"doc_ids": ["atlantis"]}})
    raw = httpx.post(f"{served.url}/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{served.url}/v2/nothing").json()["error"]["message"].startswith("GET /v2/nothing")
    assert not llm_server.chat_requests()  # nothing was sent upstream for any of them


def test_a_request_may_lower_the_operators_money_cap_but_not_raise_it(gateway, llm_server) -> None:
    from hybridctx.routing.router import RouteLimits

    _queue_answer(llm_server, "Blue [1].", stream=False)
    _, ext, _ = _ask(client_for(gateway()), stream=False, limits=FORCE_FULL)
    full_usd = ext["route"]["estimates"]["full"]["usd"]
    assert ext["mode"] == "full" and full_usd > 0
    _queue_answer(llm_server, "Blue [1].", stream=False)
    _, ext, _ = _ask(client_for(gateway()), stream=False, limits={**FORCE_FULL, "max_usd": full_usd / 2})
    assert ext["mode"] == "retrieval" and "over max_usd" in ext["route"]["reason"]  # lowered by the request
    capped = client_for(gateway(limits=RouteLimits(max_usd=full_usd / 2)))
    _queue_answer(llm_server, "Blue [1].", stream=False)
    _, ext, _ = _ask(capped, stream=False, limits={**FORCE_FULL, "max_usd": 50.0})
    assert ext["mode"] == "retrieval" and "over max_usd" in ext["route"]["reason"]  # the operator's cap holds


def test_client_api_keys_are_required_and_never_logged(gateway, llm_server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    served = gateway(api_keys=("client-key-SECRET-1", "client-key-SECRET-2"), upstream_key="sk-upstream-SECRET-3")
    with pytest.raises(openai.AuthenticationError):
        client_for(served).models.list()
    with pytest.raises(openai.AuthenticationError):
        client_for(served, key="client-key-SECRET-9").chat.completions.create(
            model="note", messages=[{"role": "user", "content": "q"}])
    assert httpx.get(f"{served.url}/health").status_code == 200  # health asks no key
    client = client_for(served, key="client-key-SECRET-2")
    assert [m.id for m in client.models.list()] == ["records", "note"]
    _queue_answer(llm_server, "Biscuit [1].", stream=False)
    assert _ask(client, stream=False, model="note")[0] == "Biscuit [1]."
    assert llm_server.chat_requests()[-1].headers["Authorization"] == "Bearer sk-upstream-SECRET-3"
    llm_server.queue(Reply(status=401, body=echo_authorization))  # an upstream that repeats the key back
    with pytest.raises(openai.InternalServerError) as err:
        _ask(client, stream=False, model="note")
    assert err.value.status_code == 502 and "SECRET" not in str(err.value.body)
    assert "SECRET" not in caplog.text and caplog.text  # something was logged, and no key in it
