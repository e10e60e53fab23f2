"""Sessions (issue 14, part 2): the ledger beside the index, and a 10-question session priced by hand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hybridctx.routing.session_ledger import SessionLedger, ledger_path, scope_key

pytestmark = pytest.mark.heavy

_BASE = ('kind = "api"\nmodel = "test-model"\nwindow = 100000\nusd_per_m_input = 1.0\nusd_per_m_output = 0.0\n'
         "prefill_tps = 100000.0\ndecode_tps = 1000.0\n")
# Twins that differ only in prompt caching: $0.10/M on a hit within 300 s.
PROFILES = (f"[profiles.round-cached]\n{_BASE}usd_per_m_cached_input = 0.1\ncache_ttl_s = 300.0\n\n"
            f"[profiles.round-plain]\n{_BASE}")


def test_scope_key_is_a_set_and_the_salt_separates_prefixes() -> None:
    assert scope_key(["a", "b"]) == scope_key(["b", "a", "a"])
    assert scope_key(["a", "b"]) != scope_key(["a"]) != scope_key(["a"], salt="system prompt")


def test_record_then_warm_within_the_ttl_only(tmp_path) -> None:
    now = [1000.0]
    ledger = SessionLedger(tmp_path / "idx", "kimi", clock=lambda: now[0])
    assert not ledger.is_warm(["a"], 300.0)
    assert ledger.record(["a"], 5000)
    assert ledger.path == ledger_path(tmp_path / "idx") and ledger.path.parent == tmp_path
    assert not (tmp_path / "idx").exists()  # beside the index, never inside it
    now[0] = 1299.0
    assert ledger.is_warm(["a"], 300.0) and ledger.is_warm(["a"], 300.0, tokens=5000)
    assert not ledger.is_warm(["a"], 300.0, tokens=5001)  # re-indexed text: another prefix
    assert not ledger.is_warm(["a"], None)  # no cache, never warm
    assert not SessionLedger(tmp_path / "idx", "gpt-4o-mini", clock=lambda: now[0]).is_warm(["a"], 300.0)
    now[0] = 1301.0
    assert not ledger.is_warm(["a"], 300.0)
    entry = json.loads(ledger.path.read_text())["profiles"]["kimi"][scope_key(["a"])]
    assert entry["tokens"] == 5000 and entry["sends"] == 1


def test_a_damaged_or_unwritable_ledger_is_cold_not_an_error(tmp_path, caplog) -> None:
    ledger = SessionLedger(tmp_path / "idx", "kimi")
    ledger.path.write_text("{not json", encoding="utf-8")
    assert not ledger.is_warm(["a"], 300.0)
    assert "not JSON" in caplog.text
    assert ledger.record(["a"], 10) and ledger.is_warm(["a"], 300.0)  # a write replaces it
    if os.name == "posix" and os.geteuid() != 0:
        locked = tmp_path / "ro"
        locked.mkdir()
        os.chmod(locked, 0o555)
        try:
            assert SessionLedger(locked / "idx", "kimi").record(["a"], 10) is False
        finally:
            os.chmod(locked, 0o755)


_WRITER = textwrap.dedent("""
    import sys
    from hybridctx.routing.session_ledger import SessionLedger
    ledger = SessionLedger(sys.argv[1], "kimi")
    ids = [f"doc-{i:05d}-" + "x" * 200 for i in range(3000)]  # a ~600 kB scope list per write
    i = 0
    ledger.record(["warm-up"], 0)  # imports done: what follows is writing
    print("ready", flush=True)
    while True:
        i += 1
        ledger.record(ids[: 1 + i % 3000], i)
        ledger.record([f"s{i}"], i)
""")


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_the_ledger_survives_a_writer_killed_mid_write(tmp_path) -> None:
    index = tmp_path / "idx"
    SessionLedger(index, "kimi").record(["first"], 1)
    for round_ in range(5):
        with subprocess.Popen([sys.executable, "-c", _WRITER, str(index)], stdout=subprocess.PIPE) as proc:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(0.3 + 0.13 * round_)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        data = json.loads(ledger_path(index).read_text(encoding="utf-8"))  # whole: the old file or a new one
        assert data["version"] == 1 and isinstance(data["profiles"]["kimi"], dict)
        ledger = SessionLedger(index, "kimi")
        assert ledger.is_warm(["first"], 3600.0)  # an earlier entry is never lost
        assert len(data["profiles"]["kimi"]) > 2 + round_  # the writer was writing when it was killed
    # A temp file left by a killed writer is cleaned by the next write.
    assert ledger.record(["after"], 2) and ledger.is_warm(["after"], 60.0)
    assert not list(tmp_path.glob(".idx.sessions.json.*.tmp"))


# -- a 10-question session through ask, with the real index and a loopback OpenAI-compatible server -----


@pytest.fixture(scope="module")
def session_index(tmp_path_factory, encoder, alice_text):
    from hybridctx import HybridContext

    root = tmp_path_factory.mktemp("session")
    src = root / "alice.jsonl"
    src.write_text(json.dumps({"doc_id": "alice", "text": alice_text[:9000]}) + "\n", encoding="utf-8")
    HybridContext.build([src], root / "idx", encoder=encoder, show_progress=False)
    profiles = root / "profiles.toml"
    profiles.write_text(PROFILES, encoding="utf-8")
    return root / "idx", profiles


QUESTIONS = ["Who was sitting on the bank?", "What did the rabbit take out of its pocket?",
             "What was written on the bottle?", "Where did the rabbit hole lead?",
             "What did Alice see on the shelves?", "What did Alice drop?", "What was the cat called?",
             "How long did the fall take?", "What did the bottle say?", "What did the rabbit wear?"]


def _session(index_dir, profiles, profile, server, *, expected: int):
    from loopback_server import Reply, completion_body

    from hybridctx import HybridContext
    from hybridctx.routing.answering import answer_question
    from hybridctx.llms import OpenAICompatibleLLM
    from hybridctx.routing.router import RouteLimits

    ledger_path(index_dir).unlink(missing_ok=True)
    limits = RouteLimits(default_budget=500, min_budget=100, retrieval_share=None, prompt_tokens=256,
                         answer_tokens=64, cheap_full_ratio=1.0)
    llm = OpenAICompatibleLLM(server.base_url, "test-model", window=100_000)
    hc = HybridContext.open(index_dir)
    answers = []
    for question in QUESTIONS:
        server.queue(Reply(body=completion_body("Alice [1].")))
        answers.append(answer_question(hc, question, llm, profile=profile, limits=limits, max_tokens=64,
                                       profiles_file=str(profiles), expected_questions=expected))
    return answers


def _spent(answer) -> float:
    """What the request was billed: a full send is cold unless the scope was warm."""
    est = answer.route["estimates"][answer.mode]
    if answer.mode == "retrieval":
        return est["usd"]
    return est["warm" if answer.route["cache"]["scope_warm"] else "cold"]["usd"]


def test_a_cached_profile_changes_the_decisions_of_a_10_question_session(session_index, llm_server) -> None:
    from hybridctx.routing.profiles import get_profile, profile_counter

    index_dir, profiles = session_index
    model = get_profile("round-cached", profiles)
    full = profile_counter(model).count(
        __import__("hybridctx").HybridContext.open(index_dir).store.text("alice"))
    assert 1800 < full < 2600  # the arithmetic below holds for this size
    # By hand, in micro-dollars (output is free): retrieval = 500 + 256 = 756 each; full cold = F + 256;
    # warm = 256 + 0.1 F. Amortised over 10: (F + 256 + 9 (256 + 0.1 F)) / 10 = 256 + 0.19 F, under 756.
    retrieval, cold, warm = 756.0, full + 256.0, 256 + 0.1 * full
    assert (cold + 9 * warm) / 10 < retrieval < cold

    plain = _session(index_dir, profiles, "round-plain", llm_server, expected=10)
    assert [a.mode for a in plain] == ["retrieval"] * 10  # no cache: full costs F + 256 every time
    assert sum(_spent(a) for a in plain) == pytest.approx(10 * retrieval / 1e6, abs=1e-5)

    cached = _session(index_dir, profiles, "round-cached", llm_server, expected=10)
    assert [a.mode for a in cached] == ["full"] * 10
    assert [a.route["cache"]["applies"] for a in cached] == ["amortised"] + ["warm"] * 9
    assert sum(_spent(a) for a in cached) == pytest.approx((cold + 9 * warm) / 1e6, abs=1e-5)
    assert sum(_spent(a) for a in cached) < sum(_spent(a) for a in plain)
    sent = llm_server.chat_requests()[-10:]
    heads = {r.body["messages"][-1]["content"].rsplit("Question: ", 1)[0] for r in sent}
    assert len(heads) == 1  # ten questions, one byte-identical prefix for the provider's cache

    # Without a declared session the first question is priced cold, goes to retrieval, and so the
    # scope never warms: the ledger records only full sends.
    single = _session(index_dir, profiles, "round-cached", llm_server, expected=1)
    assert [a.mode for a in single] == ["retrieval"] * 10
    assert not ledger_path(index_dir).exists()


def test_route_cli_reads_the_ledger_and_the_expected_questions(session_index, capsys) -> None:
    from hybridctx.cli import main
    from hybridctx.routing.profiles import get_profile, profile_counter
    from hybridctx import HybridContext

    index_dir, profiles = session_index
    ledger_path(index_dir).unlink(missing_ok=True)
    args = ["route", "Who was sitting on the bank?", "--index", str(index_dir), "--profile", "round-cached",
            "--profiles", str(profiles), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cache"] == {"applies": "cold", "scope_warm": False, "expected_questions": 1}
    assert main(args + ["--expected-questions", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["estimates"]["full"]["applies"] == "amortised"
    full = profile_counter(get_profile("round-cached", profiles)).count(HybridContext.open(index_dir).store.text("alice"))
    HybridContext.open(index_dir).record_full_send("round-cached", None, full)
    assert main(args) == 0
    warm = json.loads(capsys.readouterr().out)
    assert warm["cache"]["scope_warm"] and warm["estimates"]["full"]["applies"] == "warm"
    assert main(args + ["--no-session"]) == 0
    assert json.loads(capsys.readouterr().out)["cache"]["scope_warm"] is False
    assert main(args + ["--expected-questions", "0"]) == 2
    assert "--expected-questions" in capsys.readouterr().err


def test_ask_cli_records_its_full_send_and_no_session_does_not(session_index, llm_server, capsys) -> None:
    from loopback_server import Reply, completion_body

    from hybridctx.cli import main

    index_dir, profiles = session_index
    ledger_path(index_dir).unlink(missing_ok=True)
    args = ["ask", "Who was sitting on the bank?", "--index", str(index_dir), "--llm", llm_server.base_url,
            "--model", "test-model", "--api-key-env", "NO_SUCH_KEY_VAR", "--profile", "round-cached",
            "--profiles", str(profiles), "--expected-questions", "10", "--json"]
    llm_server.queue(Reply(body=completion_body("Alice [1].")))
    assert main(args + ["--no-session"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["mode"] == "full" and first["route"]["cache"]["applies"] == "amortised"
    assert not ledger_path(index_dir).exists()  # --no-session: neither read nor written
    llm_server.queue(Reply(body=completion_body("Alice [1].")), Reply(body=completion_body("Alice [1].")))
    assert main(args) == 0
    capsys.readouterr()
    assert ledger_path(index_dir).exists()
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["route"]["cache"] == {"applies": "warm", "scope_warm": True, "expected_questions": 10}
