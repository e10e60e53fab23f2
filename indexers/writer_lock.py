"""One writer per index directory, held across load → update → save.

Why: an update reads the old index, adds to it and saves the result. If the
lock covered only the final swap, two writers would each load the same old
state and the second save would silently drop the first one's documents (seen:
4 lost updates in 5 trials of two concurrent ``hybridctx index`` runs). So a
writer takes the lock *before* it reads anything and keeps it until its save
has been swapped into place; readers never take it (saves are atomic renames).

The lock is an advisory ``flock`` on ``.<name>.lock`` beside the index (POSIX
only; elsewhere single-writer is the caller's duty). It is re-entrant within a
thread, so ``write_index_dir`` and ``recover`` can take it again under a caller
that already holds it, and exclusive between threads of one process (``flock``
alone would not tell them apart). The holder writes its pid into the file so a
waiting writer can say whom it waits for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from hybridctx.errors import ConfigError, IndexLockedError

__all__ = ["lock_path", "writer_lock"]

logger = logging.getLogger(__name__)

_POLL_S = 0.05
_registry_guard = threading.Lock()
#: lock path -> [owning thread id, depth, fd, thread lock]
_held: dict[str, list] = {}


def lock_path(target: str | os.PathLike[str]) -> Path:
    """The lock file of index directory ``target`` (a hidden sibling)."""
    target = Path(target).expanduser().absolute()
    return target.parent / f".{target.name}.lock"


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return "another process"
    return f"process {pid}" if pid.isdigit() else "another process"


def _check_wait(wait_s: float | None) -> None:
    if wait_s is not None and (not isinstance(wait_s, (int, float)) or math.isnan(wait_s) or wait_s < 0):
        raise ConfigError(f"wait must be a number of seconds >= 0 (or None to wait as long as it takes), not {wait_s!r}")


@contextlib.contextmanager
def writer_lock(
    target: str | os.PathLike[str],
    *,
    wait_s: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Holds the writer lock of index directory ``target``.

    Args:
        target: the index directory (it need not exist yet; its parent is created).
        wait_s: how long to wait for another writer: ``None`` as long as it takes,
            ``0`` not at all.
        on_wait: called once with a sentence when the lock is busy (default: a
            warning in the log), so a waiting command is never silent.

    Raises:
        IndexLockedError: the lock stayed busy for ``wait_s`` seconds.
        ConfigError: ``wait_s`` is negative or not a number.
    """
    _check_wait(wait_s)
    path = lock_path(target)
    key = str(path)
    me = threading.get_ident()
    with _registry_guard:
        entry = _held.get(key)
        if entry is not None and entry[0] == me:
            entry[1] += 1
            reentered = True
        else:
            reentered = False
            if entry is None:
                entry = _held[key] = [None, 0, None, threading.Lock()]
            thread_lock: threading.Lock = entry[3]
    if reentered:
        try:
            yield
        finally:
            with _registry_guard:
                entry[1] -= 1
        return
    deadline = None if wait_s is None else time.monotonic() + wait_s
    told = False

    def tell() -> None:
        nonlocal told
        if told or wait_s == 0:  # failing at once: the error says it all
            return
        told = True
        limit = "as long as it takes" if wait_s is None else f"up to {wait_s:g} s"
        message = (f"index '{Path(target)}' is being written by {_holder(path)}; "
                   f"waiting {limit} for it to finish (--wait SECONDS to bound, --wait 0 to fail at once)")
        (on_wait or logger.warning)(message)

    def timed_out() -> IndexLockedError:
        return IndexLockedError(
            f"index '{Path(target)}' is being written by {_holder(path)}"
            + (f" and stayed busy for {wait_s:g} s" if wait_s else "")
            + "; retry when it is done, or pass --wait SECONDS to wait for it")

    while not thread_lock.acquire(timeout=_POLL_S):
        tell()
        if deadline is not None and time.monotonic() >= deadline:
            raise timed_out()
    fd = None
    locked = False
    try:
        if os.name == "posix":
            import fcntl

            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    locked = True
                    break
                except BlockingIOError:
                    tell()
                    if deadline is not None and time.monotonic() >= deadline:
                        raise timed_out() from None
                    time.sleep(_POLL_S)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        with _registry_guard:
            entry[0], entry[1], entry[2] = me, 1, fd
        try:
            yield
        finally:
            with _registry_guard:
                entry[0], entry[1], entry[2] = None, 0, None
    finally:
        if fd is not None:
            if locked:
                import fcntl

                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        thread_lock.release()
