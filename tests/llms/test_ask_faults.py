"""`hybridctx ask` against a misbehaving OpenAI-compatible server on 127.0.0.1, in-process and as a real process.

The question is routed to retrieval on purpose (a 2,800-token slice of Alice, ``--budget 600``), so that
escalation to full context is possible: a transport or protocol fault must end as one line on stderr and
exit 2 on both the streaming and the ``--json`` path, never as an answer, and never escalate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback_server import Reply, completion_body, delta_chunk, echo_authorization, html_page

from hybridctx import HybridContext
from hybridctx.cli import main

pytestmark = pytest.mark.heavy

SAMPLES = Path(__file__).resolve().parents[2] / "hybridctx" / "samples"
QUESTION = "Who is the White Rabbit?"
ANSWER = ["The White", " Rabbit is a nerv", "ous creature", " in a waistcoat [1]."]
KEY = "sk-proj-Zq7TestKeyThatMustNeverBePrinted0123"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ask-faults")
    text = (SAMPLES / "alice_in_wonderland.txt").read_text(encoding="utf-8")[:12000]
    (root / "alice.txt").write_text(text, encoding="utf-8")
    HybridContext.build([root / "alice.txt"], root / "idx", show_progress=False)
    return root / "idx"


def ask(index_dir: Path, server, *extra: str) -> list[str]:
    return ["ask", "--index", str(index_dir), "--llm", server.base_url, "--model", "test-model",
            "--api-key-env", "HC_TEST_KEY", "--profile", "gpt-4o-mini", "--budget", "600", *extra, QUESTION]


def whole_stream() -> Reply:
    return Reply(events=[delta_chunk(p) for p in ANSWER] + [delta_chunk(None, finish_reason="stop")])


def cut_stream() -> Reply:
    return Reply(events=[delta_chunk(p) for p in ANSWER[:2]], done=False,
                 tail=b'data: {"id": "chatcmpl-1", "choices": [{"delta": {"cont')


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hybridctx ask: error: ")  # so no traceback of ours either
    assert KEY not in err and "Zq7TestKey" not in err
    return lines[0]


def no_escalation(server) -> None:
    """Every request the server saw carried the same (retrieval) prompt: the fault did not escalate."""
    prompts = {json.dumps(r.body["messages"]) for r in server.chat_requests()}
    assert len(prompts) == 1, "a fault escalated to full context"


def test_the_route_is_retrieval_and_only_a_real_refusal_escalates(index_dir, llm_server, capsys) -> None:
    llm_server.queue(Reply(events=[delta_chunk("I cannot answer from the given context."),
                                   delta_chunk(None, finish_reason="stop")]), whole_stream())
    assert main(ask(index_dir, llm_server)) == 0
    out = capsys.readouterr().out
    assert out.startswith("Answer: I cannot answer from the given context.\n(escalating to full context: ")
    assert "\nAnswer: The White Rabbit is a nervous creature in a waistcoat [1].\n" in out
    assert "Route: full (escalated)" in out
    first, second = (r.body["messages"][-1]["content"] for r in llm_server.chat_requests())
    assert len(second) > len(first)  # the whole slice, after the retrieved spans


@pytest.mark.parametrize("json_out", [False, True], ids=["stream", "json"])
@pytest.mark.parametrize("fault", ["html-200", "empty-choices", "not-utf8", "multi-line", "echo-auth"])
def test_a_faulty_reply_is_one_line_exit_2_on_both_paths(index_dir, llm_server, capsys, monkeypatch,
                                                         fault, json_out) -> None:
    monkeypatch.setenv("HC_TEST_KEY", KEY)
    reply, expect = {
        "html-200": (Reply(raw=html_page(), content_type="text/html"), "text/html"),
        "empty-choices": (Reply(events=[{"choices": []}]) if not json_out else Reply(body={"choices": []}),
                          "no choices"),
        "not-utf8": (Reply(events=[b'{"choices": [{"delta": {"content": "caf\xe9"}}]}'])
                     if not json_out else Reply(raw=b'{"choices": [{"message": {"content": "caf\xe9"}}]}'),
                     "UTF-8"),
        "multi-line": (Reply(status=400, raw=b"Traceback (most recent call last):\n  File x\nKeyError: 'a'\n",
                             content_type="text/plain"), "HTTP 400: Traceback (most recent call last): File x"),
        "echo-auth": (Reply(status=401, body=echo_authorization), "Authorization: Bearer [redacted]"),
    }[fault]
    llm_server.queue(reply)
    code = main(ask(index_dir, llm_server, *(["--json"] if json_out else [])))
    captured = capsys.readouterr()
    assert code == 2
    assert expect in one_error_line(captured.err)
    assert captured.out == ""  # nothing printed before an answer arrives, and none did
    assert len(llm_server.chat_requests()) == 1  # not retried, not escalated


@pytest.mark.parametrize("json_out", [False, True], ids=["stream", "json"])
def test_a_stream_that_keeps_breaking_off_is_an_error_not_an_answer(index_dir, llm_server, capsys,
                                                                    json_out) -> None:
    if json_out:  # the --json path asks for one body: cut it in the middle of its JSON
        raw = json.dumps(completion_body("".join(ANSWER))).encode()
        llm_server.queue(*[Reply(raw=raw[:60], chunked=True, done=False) for _ in range(4)])
    else:
        llm_server.queue(*[cut_stream() for _ in range(4)])
    code = main(ask(index_dir, llm_server, *(["--json"] if json_out else [])))
    captured = capsys.readouterr()
    assert code == 2
    assert "failed after 4 attempts" in one_error_line(captured.err)
    if json_out:
        assert captured.out == ""
    else:  # what arrived is shown once, and marked
        assert captured.out == "Answer: The White Rabbit is a nerv [answer incomplete]\n"
    assert len(llm_server.chat_requests()) == 4
    no_escalation(llm_server)


def test_a_cut_stream_resumes_on_the_retry_without_repeating(index_dir, llm_server, capsys) -> None:
    llm_server.queue(cut_stream(), whole_stream())
    assert main(ask(index_dir, llm_server)) == 0
    out = capsys.readouterr().out
    assert out.startswith("Answer: The White Rabbit is a nervous creature in a waistcoat [1].\nRoute: retrieval")
    no_escalation(llm_server)


@pytest.mark.parametrize("json_out", [False, True], ids=["stream", "json"])
def test_a_trickling_server_ends_by_the_timeout(index_dir, llm_server, capsys, json_out) -> None:
    llm_server.queue(Reply(events=[], done=False, keepalive_s=0.2))
    code = main(ask(index_dir, llm_server, "--timeout", "2", *(["--json"] if json_out else [])))
    ended = time.monotonic()
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "within the 2 s deadline" in one_error_line(captured.err)
    [request] = llm_server.chat_requests()
    assert 1.9 < ended - request.received < 2.0 + 1.0  # cut at the deadline, not when the server gives up


def test_the_escalation_shares_the_questions_deadline(index_dir, llm_server, capsys) -> None:
    refusal = completion_body("I cannot answer from the given context.")
    llm_server.queue(Reply(body=refusal, delay_s=1.0), Reply(events=[], done=False, keepalive_s=0.2))
    code = main(ask(index_dir, llm_server, "--timeout", "2.5", "--json"))
    ended = time.monotonic()
    assert code == 2 and "deadline" in one_error_line(capsys.readouterr().err)
    first, second = llm_server.chat_requests()
    assert len(second.body["messages"][-1]["content"]) > len(first.body["messages"][-1]["content"])
    assert ended - first.received < 2.5 + 1.0  # 2.5 s for both requests together, not 2.5 s each


def test_json_reports_the_finish_reason(index_dir, llm_server, capsys) -> None:
    llm_server.queue(Reply(body=completion_body("The White Rabbit [1]", finish_reason="length")))
    assert main(ask(index_dir, llm_server, "--json", "--max-tokens", "5")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["finish_reason"] == "length" and out["answer"] == "The White Rabbit [1]"


@pytest.mark.parametrize(("args", "named"), [
    (["--budget", "0"], "--budget 0"),
    (["--budget", "-1"], "--budget -1"),
    (["--budget", "99999999999999999999999"], "--budget 99999999999999999999999 is above the largest budget"),
    (["--max-usd", "nan"], "--max-usd 'nan'"),
    (["--max-usd", "-1"], "--max-usd '-1.0'"),
    (["--max-latency-s", "0"], "--max-latency-s '0.0'"),
    (["--max-tokens", "0"], "--max-tokens 0"),
    (["--timeout", "0"], "--timeout '0.0'"),
    (["--timeout", "nan"], "--timeout 'nan'"),
    (["--timeout", "inf"], "--timeout 'inf'"),
])
def test_bad_arguments_are_refused_before_anything_loads(tmp_path, capsys, args, named) -> None:
    # The index does not exist: an argument checked after opening it would report the index instead.
    started = time.monotonic()
    code = main(["ask", "--index", str(tmp_path / "missing"), "--llm", "http://127.0.0.1:9/v1", "--model", "m",
                 *args, QUESTION])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    line = one_error_line(captured.err)
    assert named in line and "missing" not in line
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("query", ["", "   \n"])
def test_an_empty_question_is_refused(tmp_path, capsys, query) -> None:
    assert main(["ask", "--index", str(tmp_path / "missing"), query]) == 2
    captured = capsys.readouterr()
    assert "QUERY is empty" in one_error_line(captured.err) and captured.out == ""


def test_the_cli_process_ends_by_its_timeout_and_never_shows_the_key(index_dir, llm_server) -> None:
    """A real `hybridctx ask` process: a server that trickles keep-alives is cut off at --timeout 2,
    and a 401 that echoes the Authorization header never shows the key."""
    env = {**os.environ, "HC_TEST_KEY": KEY, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "hybridctx.cli"]
    llm_server.queue(Reply(events=[], done=False, keepalive_s=0.2))
    done = subprocess.run([*command, *ask(index_dir, llm_server, "--timeout", "2")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "within the 2 s deadline" in one_error_line(done.stderr)
    [request] = llm_server.chat_requests()
    # The client hung up at its deadline (the server noticed at its next keep-alive, 0.2 s later at most).
    assert request.ended is not None and 1.9 < request.ended - request.received < 2.0 + 1.0

    llm_server.queue(Reply(status=401, body=echo_authorization))
    done = subprocess.run([*command, *ask(index_dir, llm_server, "--json")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "HTTP 401" in one_error_line(done.stderr)
    assert llm_server.chat_requests()[-1].headers["Authorization"] == f"Bearer {KEY}"  # it was sent, not shown
