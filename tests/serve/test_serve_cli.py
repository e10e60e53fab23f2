"""The `serve` and `mcp` verbs: a mistake is one line and exit 2 before anything loads, and
`hybridctx serve` run as a user runs it answers the official `openai` client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hybridctx.cli import main

pytestmark = pytest.mark.heavy

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _fails(argv: list[str], capsys, words: str) -> None:
    began = time.monotonic()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err, err
    assert time.monotonic() - began < 5  # refused before any index or encoder loaded


def test_serve_refuses_bad_flags_in_one_line(index_dirs, capsys, monkeypatch, busy_port) -> None:
    idx = f"records={index_dirs['records']}"
    up = ["--upstream", "http://127.0.0.1:9/v1", "--upstream-model", "m"]
    monkeypatch.delenv("HX_TEST_UNSET_KEY", raising=False)
    _fails(["serve", "--index", idx, "--index", idx, *up], capsys, "given twice")
    _fails(["serve", "--index", idx, "--upstream", "ftp://x", "--upstream-model", "m"], capsys, "not an http(s) URL")
    _fails(["serve", "--index", idx, *up, "--api-key-env", "HX_TEST_UNSET_KEY"], capsys,
           "HX_TEST_UNSET_KEY is unset or empty")
    _fails(["serve", "--index", idx, *up, "--upstream-key-env", "HX_TEST_UNSET_KEY"], capsys, "--upstream-key-env")
    _fails(["serve", "--index", idx, *up, "--port", str(busy_port)], capsys, "cannot listen on 127.0.0.1")
    _fails(["serve", "--index", idx, *up, "--profile", "gpt-9"], capsys, "gpt-9")
    _fails(["serve", "--index", idx, *up, "--max-tokens", "9000"], capsys, "above --max-tokens-cap")
    _fails(["serve", "--index", idx, *up, "--port", "70000"], capsys, "not a port")
    _fails(["serve", "--index", idx, *up, "--max-usd", "nan"], capsys, "--max-usd")
    _fails(["serve", "--index", idx], capsys, "--upstream")
    _fails(["serve", "--index", "x=/nonexistent/idx", *up, "--port", "0"], capsys, "no index at")


def test_mcp_refuses_bad_flags_in_one_line(index_dirs, capsys, busy_port) -> None:
    idx = f"records={index_dirs['records']}"
    _fails(["mcp", "--index", idx, "--transport", "http", "--port", str(busy_port)], capsys, "cannot listen")
    _fails(["mcp", "--index", idx, "--tokenizer", "no-such-tokenizer"], capsys, "no-such-tokenizer")
    _fails(["mcp", "--index", "bad name=/x"], capsys, "must start with a letter")
    _fails(["mcp", "--index", "/nonexistent/idx"], capsys, "no index at")


def test_serve_command_answers_the_openai_client(index_dirs, llm_server, tmp_path) -> None:
    openai = pytest.importorskip("openai")
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from loopback_server import Reply, completion_body, delta_chunk

    port = _free_port()
    env = {**os.environ, "HX_CLIENT_KEYS": "key-one-SECRET, key-two-SECRET", "HX_UPSTREAM_KEY": "sk-up-SECRET"}
    log = open(tmp_path / "serve.log", "w+", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hybridctx.cli", "-v", "serve", "--index", f"records={index_dirs['records']}",
         "--index", str(index_dirs["note"]), "--upstream", llm_server.base_url, "--upstream-model", "test-model",
         "--upstream-key-env", "HX_UPSTREAM_KEY", "--api-key-env", "HX_CLIENT_KEYS", "--port", str(port),
         "--profile", "gpt-4o-mini", "--timeout", "20"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        ends = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < ends, (tmp_path / "serve.log").read_text()
            time.sleep(0.25)
        with openai.OpenAI(base_url=f"{base}/v1", api_key="key-two-SECRET", max_retries=0) as client:
            assert [m.id for m in client.models.list()] == ["records", "note"]
            llm_server.queue(Reply(body=completion_body("The gate is cobalt blue [1].")))
            answer = client.chat.completions.create(
                model="records", messages=[{"role": "user", "content": "What colour is the north gate?"}],
                extra_body={"hybridctx": {"cheap_full_ratio": 1.0, "default_budget": 96, "retrieval_share": None}})
            ext = answer.model_extra["hybridctx"]
            assert answer.choices[0].message.content == "The gate is cobalt blue [1]."
            assert ext["mode"] == "retrieval" and ext["citations"][0]["doc_id"] == "garden"
            llm_server.queue(Reply(events=[delta_chunk("Biscuit "), delta_chunk("[1]."),
                                           delta_chunk(None, finish_reason="stop")]))
            chunks = list(client.chat.completions.create(
                model="note", messages=[{"role": "user", "content": "What is the cat called?"}], stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Biscuit [1]."
            assert chunks[-1].model_extra["hybridctx"]["mode"] == "full"
        assert llm_server.chat_requests()[-1].headers["Authorization"] == "Bearer sk-up-SECRET"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0).models.list()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        log.seek(0)
        output = log.read()
        log.close()
    assert code == 0, output
    assert f"records, note on http://127.0.0.1:{port}/v1" in output
    assert "SECRET" not in output and "POST /v1/chat/completions" in output  # -v: access log, and no key in it
