"""Bad input gives one line on stderr naming it, exit 2, and loses nothing (issue 11, defects 7 and 8).

Each case here was an internal error (exit 1), a traceback, a hang or a
MemoryError before; the CLI runs in-process on a real index built once with the
packaged encoder, except where the old behaviour was a hang or an unbounded
read: those run in a child process with a time and memory limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bad_input_helpers import one_line, reseal, snapshot, write_manifest
from hybridctx.cli import main
from hybridctx.cli.checks import MAX_BUDGET, check_budget, check_limit
from hybridctx.ingest.documents import load_documents
from hybridctx.errors import ConfigError, DocumentError, IndexCorruptError, InputError

pytestmark = pytest.mark.heavy

HEAVY = ("torch", "transformers", "sentence_transformers", "faiss")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    (root / "notes.txt").write_text("The meeting moved to Tuesday.\n\nThe budget was approved in May.\n", "utf-8")
    (root / "more.jsonl").write_text(json.dumps({"doc_id": "zh", "text": "林黛玉住在潇湘馆。", "title": "红楼梦"}) + "\n",
                                     "utf-8")
    out = root / "idx" / "index"
    assert main(["index", str(root / "notes.txt"), str(root / "more.jsonl"), "--index", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture()
def run(index_dir, capsys):
    """Runs the CLI in-process; returns (exit code, stdout, stderr) and checks the index is unchanged."""
    before = snapshot(index_dir)
    capsys.readouterr()

    def call(*argv: str) -> tuple[int, str, str]:
        code = main([a.replace("{index}", str(index_dir)) for a in argv])
        out, err = capsys.readouterr()
        assert snapshot(index_dir) == before
        return code, out, err

    return call


def refused(run, *argv: str) -> str:
    """The one error line of a run that must fail with exit 2."""
    code, out, err = run(*argv)
    assert code == 2, (code, err)
    return one_line(err)


# --------------------------------------------------------------------------- JSONL documents


def _jsonl(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"doc_id": "fine", "text": "A fine first line."}\n' + line + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("line", "words"), [
    ('{"doc_id": "a", "text": "x \\ud800 y"}', ['lone surrogate \\ud800', '"text"']),
    ('{"doc_id": "\\udfff", "text": "fine text"}', ['lone surrogate \\udfff', '"doc_id"']),
    ('{"doc_id": "t", "text": "fine", "title": "\\ud83d"}', ['"title"']),
    ('{"doc_id": "m", "text": "fine", "metadata": {"k": ["\\udc00"]}}', ['"metadata"']),
    ('{"doc_id": "d", "text": "deep", "metadata": {"k": ' + "[" * 5000 + "]" * 5000 + "}}", ["too deeply"]),
    ('{"doc_id": "d", "text": "deep", "metadata": {"k": ' + "[" * 150 + "]" * 150 + "}}", ["more than 100 levels"]),
    ('{"doc_id": "n", "text": "big", "n": ' + "9" * 5000 + "}", ["4300 digits", "as a string"]),
    ('{"doc_id": "c", "text": "a\x01b"}', ["Invalid control character at column"]),
])
def test_bad_jsonl_lines_name_file_and_line(run, tmp_path, line, words) -> None:
    path = _jsonl(tmp_path, line)
    message = refused(run, "index", str(path), "--index", "{index}", "--no-progress")
    assert f"{path}:2:" in message and "at at" not in message
    for word in words:
        assert word in message


def test_a_valid_surrogate_pair_and_modest_nesting_still_load(tmp_path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"doc_id": "e", "text": "smile \ud83d\ude00", "metadata": {"k": [[[1]]]}}) + "\n"
                    + '{"doc_id": "f", "text": "escaped \\ud83d\\ude00 pair", "n": ' + "9" * 4000 + "}\n",
                    encoding="utf-8")
    docs = list(load_documents(path))
    assert [d.text for d in docs] == ["smile \U0001F600", "escaped \U0001F600 pair"]


# --------------------------------------------------------------------------- special files

_CHILD = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # an unbounded read ends here, not in swap
    from hybridctx.cli import main
    results = []
    for path in sys.argv[2:]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["index", path, "--index", sys.argv[1], "--no-progress"])
        results.append([code, err.getvalue()])
    print(json.dumps(results))
    """
)


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs FIFOs and /dev/zero")
def test_fifos_and_devices_are_refused_before_they_are_opened(tmp_path, index_dir) -> None:
    fifo_txt, fifo_jsonl, zero_txt = tmp_path / "pipe.txt", tmp_path / "pipe.jsonl", tmp_path / "zero.txt"
    os.mkfifo(fifo_txt)
    os.mkfifo(fifo_jsonl)
    zero_txt.symlink_to("/dev/zero")
    paths = [str(fifo_txt), str(fifo_jsonl), str(zero_txt), "/dev/zero"]
    before = snapshot(index_dir)
    # Before: the FIFOs blocked forever and /dev/zero.txt read until memory ran out.
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(index_dir), *paths], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    kinds = ["named pipe (FIFO)", "named pipe (FIFO)", "character device", "character device"]
    for path, kind, (code, err) in zip(paths, kinds, results):
        assert code == 2
        assert one_line(err) == f"hybridctx index: error: {path}: is a {kind}, not a regular file; " \
                                "hybridctx reads regular files and directories of them"
    assert snapshot(index_dir) == before


def test_a_directory_skips_special_files(tmp_path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "real.txt").write_text("Real text.", encoding="utf-8")
    os.mkfifo(folder / "pipe.txt")
    assert [d.doc_id for d in load_documents(folder)] == ["folder/real.txt"]


# --------------------------------------------------------------------------- budgets and limits


@pytest.mark.parametrize("verb", ["retrieve", "route"])
@pytest.mark.parametrize("budget", ["1000000000000", "99999999999999999999999", "0", "-1", "1e3", "9" * 5000])
def test_budgets_are_bounded_and_refused_before_anything_loads(run, verb, budget) -> None:
    message = refused(run, verb, "--index", "{index}", "--budget", budget, "q")
    assert f"hybridctx {verb}: error: argument --budget:" in message
    assert f"{MAX_BUDGET:,}" in message or "whole number" in message


@pytest.mark.parametrize(("flag", "value"), [
    ("--max-usd", "nan"), ("--max-usd", "inf"), ("--max-usd", "-1"), ("--max-usd", "0"),
    ("--max-latency-s", "nan"), ("--max-kv-gib", "-inf"), ("--min-budget", "0"), ("--max-budget", "-5"),
    ("--max-latency-s", "1e300"),
])
def test_route_limits_must_be_positive_and_finite(run, flag, value) -> None:
    message = refused(run, "route", "--index", "{index}", flag, value, "q")
    assert f"argument {flag}:" in message


def test_the_largest_budget_still_works(run) -> None:
    code, out, err = run("retrieve", "--index", "{index}", "--budget", str(MAX_BUDGET), "--json", "When is the meeting?")
    assert code == 0, err
    assert json.loads(out)["budget"] == MAX_BUDGET


def test_shared_checks_for_other_commands() -> None:
    assert check_budget("512") == 512 and check_limit("0.25", "--max-usd", "dollars") == 0.25
    with pytest.raises(InputError, match=r"--budget 0 is not a budget"):
        check_budget(0)
    with pytest.raises(InputError, match=r"--max-usd 'nan' must be a positive number of dollars, at most 1e\+09"):
        check_limit("nan", "--max-usd", "dollars")
    with pytest.raises(InputError, match=r"--timeout '1e300' must be a positive number of seconds"):
        check_limit("1e300", "--timeout", "seconds")  # overflowed time_t in a watchdog thread's wait


# --------------------------------------------------------------------------- queries


@pytest.mark.parametrize("verb", ["retrieve", "route"])
@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_queries_are_refused(run, verb, query) -> None:
    extra = ["--budget", "100"] if verb == "retrieve" else []
    assert "QUERY is empty" in refused(run, verb, "--index", "{index}", *extra, query)


def test_text_that_is_not_utf8_is_refused(run) -> None:
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")  # what Python makes of a Latin-1 argument
    assert "QUERY is not UTF-8 text" in refused(run, "retrieve", "--index", "{index}", "--budget", "50", bad)
    assert "--doc-id is not UTF-8 text" in refused(run, "route", "--index", "{index}", "--doc-id", bad, "q")


def test_a_bad_queries_line_fails_before_result_one_is_printed(run, tmp_path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"id": "a", "query": "When is the meeting?"}) + "\n"
                       + '{"id": "b", "query": "unterminated\n', encoding="utf-8")
    code, out, err = run("retrieve", "--index", "{index}", "--budget", "100", "--queries", str(queries), "--json")
    assert code == 2 and out == ""
    assert f"{queries}:2: not valid JSON" in one_line(err)
    queries.write_text(json.dumps({"query": "ok"}) + "\n" + '{"query": ' + "[" * 5000 + "]" * 5000 + "}\n",
                       encoding="utf-8")
    assert f"{queries}:2: not readable JSON" in refused(run, "retrieve", "--index", "{index}", "--budget", "100",
                                                        "--queries", str(queries))


def test_the_tokenizer_must_be_one(run, tmp_path) -> None:
    message = refused(run, "retrieve", "--index", "{index}", "--budget", "100", "--tokenizer", "/etc/passwd", "q")
    assert "tokenizer '/etc/passwd' is not a Hugging Face tokenizer.json" in message
    from hybridctx.packing.tokens import HFTokenizerCounter

    garbage = tmp_path / "tokenizer.json"
    garbage.write_bytes(b"\xff\xfe not json")
    with pytest.raises(ConfigError, match="is not a Hugging Face tokenizer.json"):
        HFTokenizerCounter(tmp_path)


_IMPORTS = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from hybridctx.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(sys.argv[1:])
    print(json.dumps([code, err.getvalue(), [m for m in {heavy!r} if m in sys.modules]]))
    """
)


@pytest.mark.parametrize("argv", [
    ["retrieve", "--index", "{index}", "--budget", "0", "q"],
    ["retrieve", "--index", "{index}", "--budget", "100", " "],
    ["retrieve", "--index", "{index}", "--budget", "100", "--tokenizer", "/etc/passwd", "q"],
    ["retrieve", "--index", "{index}", "--budget", "100", "--queries", "{missing}"],
    ["route", "--index", "{index}", "--max-usd", "nan", "q"],
    ["route", "--index", "{index}", "--profile", "no-such-profile", "q"],
    ["route", "--index", "{index}", "--budget", "-1", "q"],
])
def test_arguments_are_checked_before_the_encoder_loads(index_dir, tmp_path, argv) -> None:
    argv = [a.replace("{index}", str(index_dir)).replace("{missing}", str(tmp_path / "none.jsonl")) for a in argv]
    proc = subprocess.run([sys.executable, "-c", _IMPORTS.format(heavy=HEAVY), *argv], capture_output=True,
                          text=True, timeout=120)
    code, err, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert code == 2
    one_line(err)
    assert loaded == []  # before: the encoder (torch, 7 s) loaded first, then the budget was refused


# --------------------------------------------------------------------------- index files


def test_a_manifest_whose_lexical_entry_is_not_an_object(index_dir, tmp_path, capsys) -> None:
    import shutil

    from hybridctx.indexers import LandmarkStore

    crafted = tmp_path / "crafted"
    shutil.copytree(index_dir, crafted)
    manifest = json.loads((crafted / "manifest.json").read_text(encoding="utf-8"))
    for value in ("bm25", 7, ["saved"], True):
        manifest["lexical"] = value
        write_manifest(crafted, manifest)
        reseal(crafted)
        with pytest.raises(IndexCorruptError, match="lexical"):
            LandmarkStore.load(crafted)
        for argv in (["retrieve", "--index", str(crafted), "--budget", "50", "q"], ["info", "--index", str(crafted)]):
            capsys.readouterr()
            assert main(argv) == 2
            assert "lexical" in one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- messages


def test_info_docs_lists_the_ids_the_hint_points_at(run) -> None:
    message = refused(run, "retrieve", "--index", "{index}", "--budget", "50", "--doc-id", "nope", "q")
    assert "hybridctx info --docs --index" in message
    code, out, _ = run("info", "--docs", "--json", "--index", "{index}")
    assert code == 0
    docs = json.loads(out)["documents"]
    notes = "The meeting moved to Tuesday.\n\nThe budget was approved in May.\n"
    assert [(d["doc_id"], d["title"], d["chars"]) for d in docs] == [("notes.txt", None, len(notes)), ("zh", "红楼梦", 9)]
    code, out, _ = run("info", "--json", "--index", "{index}")
    assert sum(d["landmarks"] for d in docs) == json.loads(out)["counts"]["landmarks"]
    assert all(d["landmarks"] >= 1 for d in docs)
    code, out, err = run("info", "--docs", "--index", "{index}")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "CHARS", "LANDMARKS", "TITLE"]
    assert lines[1].split() == ["notes.txt", str(len(notes)), str(docs[0]["landmarks"])]
    assert lines[2].split() == ["zh", "9", str(docs[1]["landmarks"]), "红楼梦"]
    assert lines[3] == "2 document(s)"


@pytest.mark.parametrize("argv", [
    ["retrieve", "--bogus"], ["route"], ["eval"], ["info", "--index"], ["index", "--index", "x"],
    ["retrieve", "--index", "x", "--budget", "5", "--mode", "fuzzy", "q"], [],
])
def test_usage_errors_are_one_line(run, argv) -> None:
    message = refused(run, *argv)
    assert message.startswith("hybridctx")


def test_an_error_quoting_a_line_break_stays_one_line(run, tmp_path) -> None:
    odd = tmp_path / "two\nlines.txt"
    message = refused(run, "index", str(odd), "--index", "{index}", "--no-progress")
    assert "file does not exist" in message


def test_document_errors_are_documenterrors(tmp_path) -> None:
    path = _jsonl(tmp_path, '{"doc_id": "a", "text": "\\ud800"}')
    with pytest.raises(DocumentError) as info:
        list(load_documents(path))
    assert info.value.line == 2 and info.value.path == str(path)


# --------------------------------------------------------------------------- a reader that leaves early


def test_a_reader_that_closes_the_pipe_is_not_an_error(index_dir):
    """`hybridctx info ... | grep -q x` closes the pipe at the first match; that must not print
    "Broken pipe" or fail the pipeline (it failed CI's wheel smoke test once)."""
    cli = "import sys; from hybridctx.cli import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", cli, "info", "--index", str(index_dir), "--docs", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child has written a byte: its first write meets a closed pipe
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Broken pipe" not in err and b"error" not in err, err
