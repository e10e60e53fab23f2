"""Work directories of the BM25 and on-disk IVF builders: nothing left in TMPDIR by a killed run.

Real processes killed with SIGKILL while their work directory exists, then the
next run on the same index, which must sweep what the dead one left beside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hybridctx.cli import main
from hybridctx.indexers.workdirs import sweep, work_beside, work_dir

pytestmark = [pytest.mark.heavy, pytest.mark.skipif(os.name != "posix", reason="flock and SIGKILL are POSIX")]

_INDEX = textwrap.dedent(
    """
    import sys
    from hybridctx.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _work_dirs(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        found += [p for p in root.iterdir() if "hybridctx-" in p.name or ".work-" in p.name]
    return found


def _ours(tmpdir: Path) -> list[str]:
    """What hybridctx left in ``tmpdir`` (other programs in the environment may write there too)."""
    return sorted(p.name for p in tmpdir.iterdir() if "hybridctx" in p.name or ".work-" in p.name)


def _kill_when_work_dir_appears(tmp_path: Path, kind: str, extra: list[str]) -> tuple[Path, Path]:
    """Runs ``hybridctx index`` in a child with TMPDIR in ``tmp_path``; SIGKILLs it the moment a
    ``kind`` work directory exists (in TMPDIR or beside the index). Returns (TMPDIR, index)."""
    tmpdir, index = tmp_path / "tmpdir", tmp_path / "out" / "idx"
    tmpdir.mkdir()
    index.parent.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "torch-cache")}
    corpus = tmp_path / "corpus.txt"  # 400 sentences: quick to encode, enough to train IVF4
    corpus.write_text("\n\n".join(" ".join(f"Line {i}.{j} is about the {w} in the garden." for j in range(4))
                                    for i, w in enumerate(["Hatter", "Queen", "Rabbit", "Alice", "Duchess"] * 20)),
                      encoding="utf-8")
    argv = [sys.executable, "-c", _INDEX, "index", str(corpus), "--index", str(index), "--no-progress", *extra]
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while child.poll() is None and time.monotonic() < deadline:
            if any(f"{kind}-" in p.name for p in _work_dirs(tmpdir, index.parent)):
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, f"the run ended on its own: {child.stderr.read().decode()}"
    child.stderr.close()
    return tmpdir, index


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "extra"), [("bm25", []), ("ondisk", ["--on-disk", "--kind", "IVF4,Flat"])])
def test_a_killed_index_run_leaves_nothing_in_tmpdir(tmp_path: Path, kind: str, extra: list[str]) -> None:
    tmpdir, index = _kill_when_work_dir_appears(tmp_path, kind, extra)
    assert _ours(tmpdir) == []  # old code: hybridctx-bm25-* / hybridctx-ondisk-*
    left = _work_dirs(index.parent)
    assert left and all(p.name.startswith(".idx.work-") for p in left)  # the dead run's, beside the index
    # The next run on this index sweeps them and leaves none of its own behind.
    note = tmp_path / "note.txt"
    note.write_text(" ".join(f"Sentence {i} tells of the Hatter, the March Hare and tea number {i}." for i in range(12)),
                    encoding="utf-8")
    assert main(["index", str(note), "--index", str(index), "--no-progress", *extra]) == 0
    assert _work_dirs(index.parent) == []
    assert _ours(tmpdir) == []


def test_sweep_removes_only_work_dirs_whose_owner_died(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    holder = textwrap.dedent(
        """
        import sys, time
        from hybridctx.indexers.workdirs import work_beside, work_dir
        with work_beside(sys.argv[1]):
            work = work_dir("bm25")
        print(work.path, flush=True)
        time.sleep(120)
        """
    )
    index = tmp_path / "idx"
    alive = subprocess.Popen([sys.executable, "-c", holder, str(index)], stdout=subprocess.PIPE, text=True)
    dead = subprocess.Popen([sys.executable, "-c", holder, str(index)], stdout=subprocess.PIPE, text=True)
    try:
        alive_dir = Path(alive.stdout.readline().strip())
        dead_dir = Path(dead.stdout.readline().strip())
        dead.send_signal(signal.SIGKILL)
        dead.wait(timeout=30)
        foreign = tmp_path / ".idx.work-notours"  # no lock file: not hybridctx's, never touched
        foreign.mkdir()
        assert sweep(tmp_path, ".idx.work-") == 1
        assert alive_dir.is_dir() and not dead_dir.exists() and foreign.is_dir()
    finally:
        alive.kill()
        alive.wait(timeout=30)
        dead.wait(timeout=30)
        alive.stdout.close()
        dead.stdout.close()
    with work_beside(index):  # entering sweeps the one whose owner has now died too
        pass
    assert not alive_dir.exists() and foreign.is_dir()


def test_work_dir_is_removed_with_its_owner_and_goes_to_tmpdir_outside_a_save(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    class Owner:
        pass

    owner = Owner()
    work = work_dir("bm25")
    work.bind(owner)
    assert work.path.parent == tmp_path and work.path.name.startswith("hybridctx-bm25-")
    assert (work.path / ".owner.lock").is_file()
    assert sweep(tmp_path, "hybridctx-") == 0  # its owner (this process) is alive
    del owner
    assert not work.path.exists()
