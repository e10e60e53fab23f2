"""The gateway under an upstream that fails and clients that crowd it: every request ends in time with
an OpenAI-style error, and the gateway keeps serving. Real servers on 127.0.0.1 throughout."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import httpx  # noqa: E402
from loopback_server import Reply, completion_body, delta_chunk, html_page  # noqa: E402
from serve_helpers import FORCE_RETRIEVAL, client_for  # noqa: E402

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What colour is the north gate?"}]


def _still_serving(served: Any, llm_server: Any) -> None:
    """After a fault: health answers and a plain question gets its answer."""
    assert httpx.get(f"{served.url}/health", timeout=5).json()["active"] == 0
    llm_server.queue(Reply(body=completion_body("Blue [1].")))
    answer = client_for(served).chat.completions.create(model="note", messages=QUESTION)
    assert answer.choices[0].message.content == "Blue [1]."


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("reply", "status", "words"), [
    (Reply(status=500, body={"error": {"message": "CUDA out of memory"}}), 502, "HTTP 500: CUDA out of memory"),
    (Reply(status=200, raw=html_page("502 Bad Gateway"), content_type="text/html"), 502, "text/html"),
    (Reply(status=400, body={"error": {"message": "This model's maximum context length is 4096 tokens. However, "
                                                  "you requested 9000 tokens", "code": "context_length_exceeded"}}),
     400, "accepts at most 4096"),
], ids=["http-500", "html-page", "context-length"])
def test_an_upstream_error_before_any_answer_is_an_http_error(gateway, llm_server, reply, status, words,
                                                              stream: bool) -> None:
    served = gateway()
    llm_server.queue(reply)
    with pytest.raises(openai.APIStatusError) as err:
        response = client_for(served).chat.completions.create(model="note", messages=QUESTION, stream=stream)
        list(response) if stream else None
    assert err.value.status_code == status and words in err.value.message
    assert llm_server.base_url not in err.value.message  # the upstream's address stays inside
    if status == 502:
        assert err.value.response.headers["x-should-retry"] == "false"  # the gateway already retried
    _still_serving(served, llm_server)


def test_an_upstream_that_is_down_is_a_502(gateway, llm_server) -> None:
    served = gateway(upstream_url=f"http://127.0.0.1:{_closed_port()}/v1", retries=1)
    with pytest.raises(openai.InternalServerError, match="cannot connect") as err:
        client_for(served).chat.completions.create(model="note", messages=QUESTION)
    assert err.value.status_code == 502 and err.value.body["code"] == "upstream_error"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_silent_upstream_ends_at_the_deadline_with_504(gateway, llm_server, stream: bool) -> None:
    served = gateway(timeout_s=1.0)
    llm_server.queue(Reply(body=completion_body("too late"), delay_s=30))
    began = time.monotonic()
    with pytest.raises(openai.APIStatusError) as err:
        response = client_for(served).chat.completions.create(model="note", messages=QUESTION, stream=stream)
        list(response) if stream else None
    assert time.monotonic() - began < 10  # the 1 s deadline, not the upstream's 30 s
    assert err.value.status_code == 504 and err.value.body["code"] == "upstream_timeout"
    _still_serving(served, llm_server)


def test_a_trickling_stream_is_cut_at_the_deadline(gateway, llm_server) -> None:
    served = gateway(timeout_s=1.5)
    # Keep-alive comments for ever after the first words: each read succeeds, the answer never ends.
    llm_server.queue(Reply(events=[delta_chunk("The gate is blue. "), delta_chunk("It was")], done=False,
                           keepalive_s=0.05))
    pieces: list[str] = []
    began = time.monotonic()
    with pytest.raises(openai.APIError, match="in time|deadline"):
        for chunk in client_for(served).chat.completions.create(model="note", messages=QUESTION, stream=True):
            pieces.append(chunk.choices[0].delta.content or "")
    assert time.monotonic() - began < 10
    assert "".join(pieces) == "The gate is blue. It was"  # what came before the cut, then an error event
    _still_serving(served, llm_server)


@pytest.mark.parametrize(("events", "tail", "shown"), [
    ([delta_chunk("The north gate")], b"", ""),  # cut inside the held first sentence: nothing was sent
    ([delta_chunk("The north gate is blue. "), delta_chunk("It was")], b'data: {"choi', "The north gate is blue. It was"),
], ids=["before-first-sentence", "mid-answer"])
def test_a_cut_stream_is_an_error_not_an_answer(gateway, llm_server, events, tail, shown) -> None:
    served = gateway()
    llm_server.queue(Reply(events=events, done=False, tail=tail, chunked=True))
    pieces: list[str] = []
    with pytest.raises(openai.APIError) as err:
        for chunk in client_for(served).chat.completions.create(model="note", messages=QUESTION, stream=True):
            pieces.append(chunk.choices[0].delta.content or "")
    assert "".join(pieces) == shown
    if not shown:
        assert isinstance(err.value, openai.InternalServerError) and err.value.status_code == 502
    assert "the stream ended" in str(err.value)  # said as a fault, never passed off as the whole answer
    _still_serving(served, llm_server)


def test_excess_clients_get_429_at_once_when_no_wait_is_allowed(gateway, llm_server) -> None:
    served = gateway(max_concurrent=2, max_wait_s=0)
    for _ in range(4):
        llm_server.queue(Reply(body=completion_body("Blue [1]."), delay_s=1.5))
    barrier = threading.Barrier(4)

    def ask(_: int) -> str:
        barrier.wait()
        try:
            client_for(served).chat.completions.create(model="note", messages=QUESTION)
            return "ok"
        except openai.RateLimitError as exc:
            assert exc.response.headers["retry-after"] == "1" and exc.body["code"] == "gateway_busy"
            return "busy"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(ask, range(4)))
    assert outcomes == ["busy", "busy", "ok", "ok"]
    assert len(llm_server.chat_requests()) == 2


def test_waiting_clients_are_served_in_turn_never_more_than_the_bound_at_once(gateway, llm_server) -> None:
    served = gateway(max_concurrent=2, max_wait_s=30)
    for _ in range(5):
        llm_server.queue(Reply(body=completion_body("Blue [1]."), delay_s=0.4))
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(httpx.get(f"{served.url}/health", timeout=5).json()["active"])
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(lambda _: client_for(served).chat.completions.create(
                model="note", messages=QUESTION).choices[0].message.content, range(5)))
    finally:
        done.set()
        watcher.join()
    assert answers == ["Blue [1]."] * 5
    assert max(seen) == 2  # the bound was reached and never passed
    assert time.monotonic() - began >= 3 * 0.4  # five answers two at a time: at least three rounds


def test_a_client_that_hangs_up_frees_its_place(gateway, llm_server) -> None:
    served = gateway(max_concurrent=1, max_wait_s=20, timeout_s=60)
    # A long, slow stream (one byte every 4 ms): the client leaves after the first sentence.
    slow = [delta_chunk("The gate is blue. ")] + [delta_chunk("more ") for _ in range(200)]
    llm_server.queue(Reply(events=slow + [delta_chunk(None, finish_reason="stop")], byte_every_s=0.004))
    stream = client_for(served).chat.completions.create(model="note", messages=QUESTION, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    began = time.monotonic()
    llm_server.queue(Reply(body=completion_body("Blue [1].")))
    answer = client_for(served).chat.completions.create(model="note", messages=QUESTION)
    assert answer.choices[0].message.content == "Blue [1]."
    assert time.monotonic() - began < 15  # the abandoned turn ended at its next piece, not at its 60 s deadline


def test_retrieval_questions_from_many_clients_at_once(gateway, llm_server, indexes) -> None:
    served = gateway(max_concurrent=4, max_wait_s=30)
    questions = ["What colour is the north gate?", "Who rings the copper bell?", "How many maps are there?"] * 2
    for _ in questions:
        llm_server.queue(Reply(body=completion_body("See [1].")))

    def ask(question: str) -> str:
        response = client_for(served).chat.completions.create(
            model="records", messages=[{"role": "user", "content": question}],
            extra_body={"hybridctx": FORCE_RETRIEVAL})
        return response.model_extra["hybridctx"]["citations"][0]["doc_id"]

    with ThreadPoolExecutor(6) as pool:
        cited = list(pool.map(ask, questions))
    assert cited == ["garden", "harbour", "library"] * 2  # each answer carries its own question's evidence
