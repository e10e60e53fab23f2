"""The two plug-in examples run as a user runs them: as scripts, offline, on a prebuilt Alice index."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from loopback_server import Reply, completion_body

pytestmark = pytest.mark.heavy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=300, cwd=EXAMPLES.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_langchain_example_without_llm(alice_index) -> None:
    out = run_example("langchain_pipeline.py", "--index", str(alice_index), "--no-llm", "--budget", "400")
    assert re.search(r"retriever: \d+ spans, \d+ tokens", out)
    packed = re.search(r"packer: (\d+) spans, (\d+)/400 tokens", out)
    assert packed and int(packed.group(1)) > 0 and int(packed.group(2)) <= 400
    assert "router: retrieval" in out and "answer:" not in out


def test_llamaindex_example_without_llm(alice_index) -> None:
    out = run_example("llamaindex_pipeline.py", "--index", str(alice_index), "--no-llm", "--budget", "400")
    assert re.search(r"retriever: \d+ spans, \d+ tokens", out)
    packed = re.search(r"postprocessor: (\d+) spans, (\d+)/400 tokens", out)
    assert packed and int(packed.group(1)) > 0 and int(packed.group(2)) <= 400


def test_llamaindex_example_with_a_server(alice_index, llm_server) -> None:
    llm_server.queue(Reply(body=completion_body("One side makes you grow taller [1].")))
    out = run_example("llamaindex_pipeline.py", "--index", str(alice_index), "--budget", "400",
                      "--llm", llm_server.base_url, "--model", "test-model")
    assert "route: retrieval:" in out
    assert re.search(r"answer \(\d+ source spans, \d+ context tokens\): One side makes you grow taller \[1\]\.", out)
    assert "Caterpillar" in llm_server.chat_requests()[0].body["messages"][-1]["content"]
