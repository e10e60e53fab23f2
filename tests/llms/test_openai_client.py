"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from loopback_server import LoopbackServer, Reply, completion_body, delta_chunk

from hybridctx.errors import ConfigError, ContextLengthError, LLMError
from hybridctx.llms import LLM, OpenAICompatibleLLM
from hybridctx.llms.openai_compat import DEFAULT_WINDOW

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is the key?"}]


def client(server: LoopbackServer, **options) -> OpenAICompatibleLLM:
    options.setdefault("api_key_env", None)
    options.setdefault("backoff_s", 0.01)
    options.setdefault("timeout_s", 5.0)
    return OpenAICompatibleLLM(server.base_url, "test-model", **options)


def test_json_answer(llm_server: LoopbackServer) -> None:
    llm_server.queue(Reply(body=completion_body("Under the mat [1].", prompt_tokens=21, completion_tokens=6)))
    llm = client(llm_server, api_key="sk-secret-123")
    assert isinstance(llm, LLM)

    out = llm.generate(MESSAGES, max_tokens=64)

    assert out.text == "Under the mat [1]."
    assert (out.prompt_tokens, out.completion_tokens) == (21, 6)
    assert out.finish_reason == "stop" and out.model == "test-model" and out.seconds > 0
    [request] = llm_server.chat_requests()
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.body == {"model": "test-model", "messages": MESSAGES, "max_tokens": 64,
                            "temperature": 0.0, "stream": False}
    assert request.headers["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in repr(llm)


def test_api_key_from_the_named_environment_variable(llm_server, monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", "ms-key")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    client(llm_server, api_key_env="MOONSHOT_API_KEY").generate(MESSAGES)
    client(llm_server, api_key_env=None).generate(MESSAGES)  # a local server: no key sent
    first, second = llm_server.chat_requests()
    assert first.headers["Authorization"] == "Bearer ms-key"
    assert "Authorization" not in second.headers


def test_streaming_calls_on_token_per_piece(llm_server: LoopbackServer) -> None:
    usage = {"id": "x", "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 3}}
    llm_server.queue(Reply(events=[
        delta_chunk(None),  # the role-only first chunk
        delta_chunk("Under"), delta_chunk(" the"), delta_chunk(" mat."),
        delta_chunk(None, finish_reason="stop"),
        usage,
    ]))
    pieces: list[str] = []

    out = client(llm_server).generate(MESSAGES, stream=True, on_token=pieces.append)

    assert pieces == ["Under", " the", " mat."]
    assert "".join(pieces) == out.text == "Under the mat."
    assert (out.prompt_tokens, out.completion_tokens, out.finish_reason) == (30, 3, "stop")
    body = llm_server.chat_requests()[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_streaming_without_usage_estimates_the_counts(llm_server: LoopbackServer) -> None:
    llm_server.queue(Reply(events=[delta_chunk("Forty"), delta_chunk(" two", finish_reason="length")]))
    out = client(llm_server, stream_usage=False).generate(MESSAGES, stream=True)
    assert out.text == "Forty two" and out.finish_reason == "length" and out.truncated
    assert out.completion_tokens > 0 and out.prompt_tokens > 8  # cl100k_base estimates
    assert "stream_options" not in llm_server.chat_requests()[0].body


def test_an_error_inside_the_stream_raises(llm_server: LoopbackServer) -> None:
    llm_server.queue(Reply(events=[delta_chunk("Hal"), {"error": {"message": "engine crashed"}}], done=False))
    with pytest.raises(LLMError, match="engine crashed"):
        client(llm_server).generate(MESSAGES, stream=True)


def test_429_honours_retry_after_then_succeeds(llm_server: LoopbackServer) -> None:
    llm_server.queue(
        Reply(status=429, body={"error": {"message": "rate limited"}}, headers={"Retry-After": "0"}),
        Reply(body=completion_body("ok")),
    )
    started = time.perf_counter()
    # backoff_s=5: were Retry-After ignored, the retry would wait 5 s.
    out = client(llm_server, backoff_s=5.0).generate(MESSAGES)
    assert out.text == "ok"
    assert len(llm_server.chat_requests()) == 2
    assert time.perf_counter() - started < 2.5


def test_500_twice_then_success(llm_server: LoopbackServer) -> None:
    llm_server.queue(
        Reply(status=500, body={"error": {"message": "boom"}}),
        Reply(status=502, body=None),
        Reply(body=completion_body("third time lucky")),
    )
    out = client(llm_server).generate(MESSAGES)
    assert out.text == "third time lucky"
    assert len(llm_server.chat_requests()) == 3


def test_retries_run_out(llm_server: LoopbackServer) -> None:
    llm_server.queue(*[Reply(status=503, body={"error": {"message": "overloaded"}}) for _ in range(3)])
    with pytest.raises(LLMError, match=r"after 3 attempts: HTTP 503: overloaded"):
        client(llm_server, max_retries=2).generate(MESSAGES)
    assert len(llm_server.chat_requests()) == 3


def test_401_is_not_retried(llm_server: LoopbackServer, caplog: pytest.LogCaptureFixture) -> None:
    llm_server.queue(Reply(status=401, body={"error": {"message": "Incorrect API key provided"}}))
    caplog.set_level(logging.DEBUG, logger="hybridctx")
    with pytest.raises(LLMError, match="HTTP 401.*Incorrect API key.*check the API key") as info:
        client(llm_server, api_key="sk-never-logged").generate(MESSAGES)
    assert not isinstance(info.value, ContextLengthError)
    assert len(llm_server.chat_requests()) == 1
    assert "sk-never-logged" not in caplog.text and "sk-never-logged" not in str(info.value)


def test_retry_logs_never_show_the_key(llm_server: LoopbackServer, caplog: pytest.LogCaptureFixture) -> None:
    llm_server.queue(Reply(status=500, body={"error": {"message": "boom"}}), Reply(body=completion_body("ok")))
    caplog.set_level(logging.DEBUG, logger="hybridctx")
    client(llm_server, api_key="sk-never-logged").generate(MESSAGES)
    assert "retry 1 of 3" in caplog.text
    assert "sk-never-logged" not in caplog.text


@pytest.mark.parametrize(
    ("error", "tokens", "window"),
    [
        pytest.param({"error": {"message": "This model's maximum context length is 8192 tokens. However, you "
                      "requested 9000 tokens (8488 in the messages, 512 in the completion). Please reduce the "
                      "length of the messages or completion.", "type": "BadRequestError", "code": 400}},
                     9000, 8192, id="vllm"),
        pytest.param({"error": {"message": "This model's maximum context length is 128000 tokens. However, your "
                      "messages resulted in 130532 tokens. Please reduce the length of the messages.",
                      "type": "invalid_request_error", "code": "context_length_exceeded"}},
                     130532, 128000, id="openai"),
        pytest.param({"object": "error", "message": "The input (9001 tokens) is longer than the model's context "
                      "length (8192 tokens).", "code": 400}, 9001, 8192, id="sglang"),
        pytest.param({"error": {"code": 400, "message": "the request exceeds the available context size, try "
                      "increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 5000,
                      "n_ctx": 4096}}, 5000, 4096, id="llama.cpp"),
        pytest.param({"error": {"message": "Invalid request: Your request exceeded model token limit: 8192",
                      "type": "invalid_request_error"}}, None, 8192, id="kimi"),
    ],
)
def test_context_length_error_names_tokens_and_window(llm_server, error, tokens, window) -> None:
    llm_server.queue(Reply(status=400, body=error))
    with pytest.raises(ContextLengthError) as info:
        client(llm_server, window=2048).generate(MESSAGES, max_tokens=100)
    assert info.value.window == window
    if tokens is not None:
        assert info.value.tokens == tokens
    else:  # not in the message: the client's own estimate of prompt + max_tokens
        assert info.value.tokens > 100
    assert f"{info.value.tokens} tokens" in str(info.value) and str(window) in str(info.value)
    assert "test-model" in str(info.value)
    assert len(llm_server.chat_requests()) == 1


def test_context_length_error_without_numbers_uses_the_clients_counts(llm_server: LoopbackServer) -> None:
    llm_server.queue(Reply(status=400, body={"error": {"message": "too many tokens in prompt"}}))
    with pytest.raises(ContextLengthError) as info:
        client(llm_server, window=2048).generate(MESSAGES, max_tokens=300)
    assert info.value.window == 2048 and info.value.tokens > 300


def test_timeout_names_the_url_and_seconds(llm_server: LoopbackServer) -> None:
    llm_server.queue(Reply(body=completion_body("too late"), delay_s=3.0))
    started = time.perf_counter()
    with pytest.raises(LLMError, match=r"/v1/chat/completions timed out after 0\.3 s"):
        client(llm_server, timeout_s=0.3).generate(MESSAGES)
    assert time.perf_counter() - started < 2.0  # not retried
    assert len(llm_server.chat_requests()) == 1


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{port}/v1", "m", api_key_env=None, max_retries=1, backoff_s=0.0)
    with pytest.raises(LLMError, match=r"failed after 2 attempts: cannot connect"):
        llm.generate(MESSAGES)


def test_window_is_read_from_the_servers_model_list(llm_server: LoopbackServer) -> None:
    llm_server.queue(Reply(path="/v1/models", body={"object": "list", "data": [
        {"id": "other", "max_model_len": 4096}, {"id": "test-model", "max_model_len": 32768}]}))
    assert client(llm_server).window == 32768
    assert client(llm_server).window == DEFAULT_WINDOW  # 404 on /models: the default, logged
    assert client(llm_server, window=1000).window == 1000


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        OpenAICompatibleLLM("127.0.0.1:8000/v1", "m")
    with pytest.raises(ConfigError):
        OpenAICompatibleLLM("http://127.0.0.1:8000/v1", "m", timeout_s=0)
    llm = OpenAICompatibleLLM("http://127.0.0.1:8000/v1/chat/completions", "m")
    assert llm.chat_url == "http://127.0.0.1:8000/v1/chat/completions"


def test_sse_parsing_handles_comments_crlf_and_multiline_data() -> None:
    import io

    from hybridctx.llms.wire import sse_events

    raw = (
        b": ping\r\n\r\nevent: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n"
        b"data:{\"b\": 2}\n\ndata: [DONE]\n\ndata: {\"late\": 3}\n\n"
    )
    assert list(sse_events(io.BytesIO(raw))) == ['{"a":\n1}', '{"b": 2}']
    assert list(sse_events(io.BytesIO(b'data: {"c": 3}'))) == ['{"c": 3}']  # no final blank line


def test_retry_after_in_seconds_or_as_a_date() -> None:
    from email.utils import formatdate

    from hybridctx.llms.wire import retry_after_seconds

    assert retry_after_seconds("0") == 0.0 and retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert 5 < retry_after_seconds(formatdate(time.time() + 10, usegmt=True)) <= 10
