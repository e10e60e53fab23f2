"""The OpenAI-compatible client against a misbehaving server on 127.0.0.1.

Each fault is one a real server, proxy or gateway produces: a stream cut in the
middle of an answer, an end without ``[DONE]``, an HTML page with status 200,
no choices, a trickle of keep-alives, one byte at a time, an error that echoes
the credentials, a traceback as the error body, bytes that are not UTF-8. None
may end as an answer that looks complete, hang past the deadline, or print
server text raw.
"""

from __future__ import annotations

import json
import time

import pytest
from loopback_server import LoopbackServer, Reply, completion_body, delta_chunk, echo_authorization, html_page

from hybridctx.errors import ConfigError, LLMError
from hybridctx.llms import OpenAICompatibleLLM

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Who is the White Rabbit?"}]
ANSWER = ["The White", " Rabbit is a nerv", "ous creature", " in a waistcoat."]
KEY = "sk-proj-Zq7TestKeyThatMustNeverBePrinted0123"


def client(server: LoopbackServer, **options) -> OpenAICompatibleLLM:
    options.setdefault("api_key_env", None)
    options.setdefault("backoff_s", 0.01)
    options.setdefault("timeout_s", 5.0)
    return OpenAICompatibleLLM(server.base_url, "test-model", **options)


def whole_stream(**options) -> Reply:
    return Reply(events=[delta_chunk(p) for p in ANSWER] + [delta_chunk(None, finish_reason="stop")], **options)


def cut_stream(**options) -> Reply:
    """Two pieces of the answer, then half an event and the connection closes."""
    return Reply(events=[delta_chunk(p) for p in ANSWER[:2]], done=False,
                 tail=b'data: {"id": "chatcmpl-1", "choices": [{"delta": {"cont', **options)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "\r" not in text
    return text


# -- streams that break off -------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_a_cut_stream_is_retried_and_resumes_without_repeating(llm_server, chunked) -> None:
    llm_server.queue(cut_stream(chunked=chunked), whole_stream(chunked=chunked))
    pieces: list[str] = []
    out = client(llm_server).generate(MESSAGES, stream=True, on_token=pieces.append)
    assert "".join(pieces) == out.text == "".join(ANSWER)  # nothing printed twice
    assert out.finish_reason == "stop"
    assert len(llm_server.chat_requests()) == 2


@pytest.mark.parametrize("fault", ["cut", "eof-no-done", "chunked-cut"])
def test_a_stream_without_a_proper_end_is_an_error_after_the_retries(llm_server, fault) -> None:
    reply = {
        "cut": lambda: cut_stream(),
        "eof-no-done": lambda: Reply(events=[delta_chunk(p) for p in ANSWER[:2]], done=False),
        "chunked-cut": lambda: Reply(events=[delta_chunk(p) for p in ANSWER[:2]], done=False, chunked=True),
    }[fault]
    llm_server.queue(reply(), reply())
    pieces: list[str] = []
    with pytest.raises(LLMError, match=r"failed after 2 attempts: the stream .*(ended|broke off)") as info:
        client(llm_server, max_retries=1).generate(MESSAGES, stream=True, on_token=pieces.append)
    assert "".join(pieces) == "The White Rabbit is a nerv"  # handed on once, not once per attempt
    assert "127.0.0.1" in one_line(info.value)
    assert len(llm_server.chat_requests()) == 2


def test_a_retry_that_answers_differently_is_an_error(llm_server) -> None:
    other = Reply(events=[delta_chunk("A rabbit."), delta_chunk(None, finish_reason="stop")])
    llm_server.queue(cut_stream(), other)
    pieces: list[str] = []
    with pytest.raises(LLMError, match="answered differently"):
        client(llm_server).generate(MESSAGES, stream=True, on_token=pieces.append)
    assert "".join(pieces) == "The White Rabbit is a nerv"


def test_a_finish_reason_without_done_is_a_complete_answer(llm_server) -> None:
    llm_server.queue(whole_stream(done=False))
    out = client(llm_server).generate(MESSAGES, stream=True)
    assert out.text == "".join(ANSWER) and out.finish_reason == "stop"


def test_a_json_body_cut_short_is_retried(llm_server) -> None:
    whole = completion_body("The White Rabbit is late.")
    raw = json.dumps(whole).encode()
    llm_server.queue(Reply(raw=raw[: len(raw) // 2]), Reply(raw=raw[: len(raw) // 2], chunked=True, done=False),
                     Reply(body=whole))
    out = client(llm_server).generate(MESSAGES)
    assert out.text == "The White Rabbit is late."
    assert len(llm_server.chat_requests()) == 3


# -- replies that are not chat completions ----------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_html_page_with_200_is_an_error_naming_the_server(llm_server, stream) -> None:
    llm_server.queue(Reply(raw=html_page(), content_type="text/html; charset=utf-8"))
    with pytest.raises(LLMError) as info:
        client(llm_server).generate(MESSAGES, stream=stream)
    text = one_line(info.value)
    assert llm_server.base_url in text and "text/html" in text and "502 Bad Gateway" in text
    assert len(llm_server.chat_requests()) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_no_choices_is_an_error_not_an_empty_answer(llm_server, stream) -> None:
    empty = {"id": "chatcmpl-1", "object": "chat.completion", "model": "test-model", "choices": []}
    llm_server.queue(Reply(events=[empty]) if stream else Reply(body=empty))
    with pytest.raises(LLMError, match="no choices") as info:
        client(llm_server).generate(MESSAGES, stream=stream)
    assert llm_server.base_url in one_line(info.value)


def test_bytes_that_are_not_utf8_in_a_stream_are_an_error(llm_server) -> None:
    bad = b'{"choices": [{"index": 0, "delta": {"content": "caf\xe9"}, "finish_reason": null}]}'
    llm_server.queue(Reply(events=[delta_chunk("The"), bad, delta_chunk(None, finish_reason="stop")]))
    with pytest.raises(LLMError, match=r"not UTF-8.*0xe9") as info:
        client(llm_server).generate(MESSAGES, stream=True)
    one_line(info.value)


def test_an_endless_line_in_a_stream_is_an_error_not_a_memory_hog(llm_server) -> None:
    llm_server.queue(Reply(events=[delta_chunk("x" * (2 << 20))]))  # one 2 MiB line; the limit is 1 MiB
    with pytest.raises(LLMError, match="longer than 1048576 bytes") as info:
        client(llm_server).generate(MESSAGES, stream=True)
    one_line(info.value)


# -- deadlines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_trickle_of_keepalives_ends_by_the_deadline(llm_server, stream) -> None:
    # The read timeout (5 s) never fires: a comment comes every 0.2 s. The deadline (1.5 s) does.
    llm_server.queue(Reply(events=[delta_chunk("The")], done=False, keepalive_s=0.2))
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"1\.5 s deadline") as info:
        client(llm_server, deadline_s=1.5).generate(MESSAGES, stream=stream)
    assert 1.4 < time.monotonic() - started < 3.0
    assert "deadline_s" in one_line(info.value)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_one_byte_at_a_time_ends_by_the_deadline(llm_server, stream) -> None:
    slow = whole_stream(byte_every_s=0.05) if stream else Reply(body=completion_body("late"), byte_every_s=0.05)
    llm_server.queue(slow)
    started = time.monotonic()
    with pytest.raises(LLMError, match="deadline"):
        client(llm_server, deadline_s=1.0).generate(MESSAGES, stream=stream)
    assert time.monotonic() - started < 2.5


def test_the_deadline_covers_retries_and_their_waits(llm_server) -> None:
    llm_server.queue(*[Reply(status=503, body={"error": {"message": "overloaded"}}, headers={"Retry-After": "5"})
                       for _ in range(3)])
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"1 s deadline.*HTTP 503: overloaded"):
        client(llm_server, deadline_s=1.0).generate(MESSAGES)
    assert time.monotonic() - started < 1.0  # no point waiting 5 s for a retry past the deadline
    assert len(llm_server.chat_requests()) == 1


def test_a_per_call_deadline_shortens_the_clients(llm_server) -> None:
    llm_server.queue(Reply(events=[delta_chunk("The")], done=False, keepalive_s=0.2))
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"1 s deadline"):
        client(llm_server, deadline_s=30.0).generate(MESSAGES, stream=True, deadline_s=1.0)
    assert time.monotonic() - started < 2.5


def test_a_fast_answer_is_untouched_by_the_deadline(llm_server) -> None:
    llm_server.queue(whole_stream(), Reply(body=completion_body("ok")))
    llm = client(llm_server, deadline_s=2.0)
    assert llm.generate(MESSAGES, stream=True).text == "".join(ANSWER)
    assert llm.generate(MESSAGES).text == "ok"


def test_bad_deadlines_are_refused(llm_server) -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="deadline_s"):
            client(llm_server, deadline_s=bad)
    with pytest.raises(ConfigError, match="deadline_s"):
        client(llm_server).generate(MESSAGES, deadline_s=0)


# -- server text is folded, bounded and redacted ---------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_error_echoing_the_authorization_header_never_shows_the_key(llm_server, stream) -> None:
    llm_server.queue(Reply(status=401, body=echo_authorization))
    with pytest.raises(LLMError, match="HTTP 401") as info:
        client(llm_server, api_key=KEY).generate(MESSAGES, stream=stream)
    text = one_line(info.value)
    assert KEY not in text and KEY[:12] not in text and "Zq7TestKey" not in text
    assert "[redacted]" in text and "check the API key" in text


def test_a_key_of_any_shape_is_redacted_and_so_are_other_tokens(llm_server) -> None:
    key = "a1b2c3d4e5-private"
    message = f"denied: key {key}; upstream said Bearer eyJhbGciOiJIUzI1NiJ9.abc.def and sk-ant-api03-XYZxyz0123456789"
    llm_server.queue(Reply(status=403, body={"error": {"message": message}}))
    with pytest.raises(LLMError) as info:
        client(llm_server, api_key=key).generate(MESSAGES)
    text = one_line(info.value)
    for secret in (key, "eyJhbGciOiJIUzI1NiJ9", "sk-ant-api03-XYZxyz0123456789"):
        assert secret not in text
    assert text.count("[redacted]") == 3


def test_a_multiline_error_body_becomes_one_bounded_line(llm_server) -> None:
    body = ("Traceback (most recent call last):\n  File \"/srv/app.py\", line 12, in handler\n"
            "    raise ValueError(x)\nValueError: \x1b[31mboom\x1b[0m\r\n" + "padding " * 5000).encode()
    llm_server.queue(Reply(status=400, raw=body, content_type="text/plain"))
    with pytest.raises(LLMError, match=r"HTTP 400: Traceback \(most recent call last\): File") as info:
        client(llm_server).generate(MESSAGES)
    text = one_line(info.value)
    assert "\x1b" not in text and len(text) < 600  # 300 characters of server text, plus ours


def test_a_retried_error_body_is_folded_too(llm_server) -> None:
    llm_server.queue(*[Reply(status=500, raw=b"line one\nline two\n" + KEY.encode(), content_type="text/plain")
                       for _ in range(2)])
    with pytest.raises(LLMError, match="HTTP 500: line one line two") as info:
        client(llm_server, api_key=KEY, max_retries=1).generate(MESSAGES)
    assert KEY not in one_line(info.value)


def test_a_key_sent_in_an_extra_header_is_redacted(llm_server) -> None:
    azure_key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    llm_server.queue(Reply(status=401, body=lambda headers: {"error": {"message": f"bad api-key {headers['api-key']}"}}))
    with pytest.raises(LLMError, match=r"bad api-key \[redacted\]") as info:
        client(llm_server, headers={"api-key": azure_key}).generate(MESSAGES)
    assert azure_key not in str(info.value)


def test_credentials_in_the_base_url_are_not_shown() -> None:
    llm = OpenAICompatibleLLM("http://user:hunter2@127.0.0.1:9/v1", "m", api_key_env=None, max_retries=0)
    with pytest.raises(LLMError) as info:
        llm.generate(MESSAGES)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(llm)
