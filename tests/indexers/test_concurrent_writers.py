"""Two writers of one index never lose an update (real processes, the real encoder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hybridctx.errors import IndexLockedError

pytestmark = pytest.mark.heavy

HOLD = """
import sys
from hybridctx.indexers.writer_lock import writer_lock
with writer_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()   # until the test closes our stdin
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hybridctx.cli", *args]


def _write(path: Path, doc_id: str, text: str) -> Path:
    path.write_text(json.dumps({"doc_id": doc_id, "text": text}) + "\n", encoding="utf-8")
    return path


def _doc_ids(index: Path) -> set[str]:
    from hybridctx.indexers import LandmarkStore

    store = LandmarkStore.load(index)
    try:
        return set(store.doc_ids())
    finally:
        store.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("writers")
    first = _write(root / "first.jsonl", "first", "The first document is about rivers and their deltas.")
    done = subprocess.run(_cli("index", str(first), "--index", str(root / "idx"), "--no-progress"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root / "idx"


def _fresh(base: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(base, tmp_path / "idx")
    return tmp_path / "idx"


@pytest.mark.parametrize("trial", range(2))
def test_two_concurrent_index_runs_keep_both_documents(base: Path, tmp_path: Path, trial: int) -> None:
    index = _fresh(base, tmp_path)
    files = [_write(tmp_path / f"{n}.jsonl", n, f"Document {n} tells of {n} mountains and {n} valleys.")
             for n in ("alpha", "beta")]
    procs = [subprocess.Popen(_cli("index", str(f), "--index", str(index), "--no-progress"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    assert all("indexed 1 new" in out for out, _ in outs)
    assert _doc_ids(index) == {"first", "alpha", "beta"}


def _holder(index: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(index)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _read_until(proc: subprocess.Popen, words: str, deadline_s: float) -> str:
    """``proc``'s stderr lines up to and including the first that holds ``words``."""
    assert proc.stderr is not None
    seen: list[str] = []
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        line = proc.stderr.readline()
        if not line:  # the process ended without saying it
            break
        seen.append(line)
        if words in line:
            break
    return "".join(seen)


def test_a_second_writer_fails_fast_or_waits(base: Path, tmp_path: Path) -> None:
    index = _fresh(base, tmp_path)
    before = {p.name: p.read_bytes() for p in index.iterdir()}
    extra = _write(tmp_path / "extra.jsonl", "extra", "An extra document about lighthouses.")
    holder = _holder(index)
    try:
        quick = subprocess.run(_cli("index", str(extra), "--index", str(index), "--wait", "0", "--no-progress"),
                               capture_output=True, text=True, timeout=300)
        assert quick.returncode == 2
        lines = quick.stderr.strip().splitlines()
        assert len(lines) == 1 and f"being written by process {holder.pid}" in lines[0]
        gone = subprocess.run(_cli("delete", "first", "--index", str(index), "--wait", "0.2"),
                              capture_output=True, text=True, timeout=300)
        assert gone.returncode == 2 and "stayed busy for 0.2 s" in gone.stderr
        assert {p.name: p.read_bytes() for p in index.iterdir()} == before  # nothing lost, nothing changed

        patient = subprocess.Popen(_cli("index", str(extra), "--index", str(index), "--wait", "120", "--no-progress"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Released only once the patient writer has said it waits: on a busy CPU its start alone can
        # take longer than any fixed sleep, and it would then never meet the held lock.
        said = _read_until(patient, "waiting up to 120 s", deadline_s=240)
        assert patient.poll() is None  # still waiting for the holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()  # type: ignore[union-attr]
    out, err = patient.communicate(timeout=300)
    assert patient.returncode == 0, said + err
    assert "waiting up to 120 s" in said  # it said why it waited
    assert _doc_ids(index) == {"first", "extra"}


def test_threads_of_one_process_queue_too(base: Path, tmp_path: Path, encoder) -> None:
    from hybridctx import HybridContext

    index = _fresh(base, tmp_path)
    files = [_write(tmp_path / f"t{n}.jsonl", f"t{n}", f"Thread document {n} about the {n}th harbour.")
             for n in range(3)]
    errors: list[BaseException] = []

    def build(path: Path) -> None:
        try:
            HybridContext.build(path, index, encoder=encoder, show_progress=False)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert _doc_ids(index) == {"first", "t0", "t1", "t2"}


def test_library_wait_zero_raises(base: Path, tmp_path: Path) -> None:
    from hybridctx import HybridContext

    index = _fresh(base, tmp_path)
    holder = _holder(index)
    try:
        with pytest.raises(IndexLockedError, match=f"process {holder.pid}"):
            HybridContext.delete(index, ["first"], wait_s=0)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()  # type: ignore[union-attr]
    assert HybridContext.delete(index, ["first"], wait_s=5) == 1
    assert os.path.exists(index / "manifest.json")
