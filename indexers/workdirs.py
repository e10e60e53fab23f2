"""Private work directories that a killed process cannot leave behind for good.

Why: the BM25 builder and the on-disk IVF index need scratch files that live as
long as the object using them. They went to ``TMPDIR`` and were removed when
the object was collected or the process exited, so every indexing run killed
(``kill -9``, OOM) after the BM25 build left a ``hybridctx-bm25-*`` directory
there that nothing ever removed. Two rules now:

1. While an index directory is being written (:func:`work_beside`, which the
   indexer and every save use), work directories are made beside it, hidden
   (``.<name>.work-<kind>-<random>``): on the index's own disk (so saving
   hard-links the files instead of copying them from a RAM-backed ``/tmp``),
   never in ``TMPDIR``. Elsewhere (an in-memory index a program builds and
   queries) they still go to ``TMPDIR`` (``hybridctx-<kind>-<random>``).
2. Each work directory holds a lock file that its owner keeps ``flock``-ed for
   its lifetime. The kernel releases that lock when the owner dies, however it
   dies, so whenever a new work directory is made, those beside it whose lock
   is free are removed: a killed run's leftovers go on the next run. A
   directory is made under a name the sweep ignores and renamed into place
   once locked, so no sweep can see it unlocked.

Off POSIX there is no ``flock``: nothing is swept, rule 1 still applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import secrets
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Iterator

__all__ = ["WorkDir", "sweep", "work_beside", "work_dir"]

logger = logging.getLogger(__name__)

_LOCK_FILE = ".owner.lock"
_BESIDE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("hybridctx_work_beside", default=None)


class WorkDir:
    """A private work directory, locked by this process until :meth:`remove`.

    Attributes:
        path: the directory.
    """

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd
        self._finalizer = weakref.finalize(self, _remove, str(path), fd)

    def bind(self, owner: object) -> None:
        """Removes the directory when ``owner`` is collected (or at exit), not when this handle is."""
        if self._finalizer.detach() is not None:
            self._finalizer = weakref.finalize(owner, _remove, str(self.path), self._fd)

    def remove(self) -> None:
        """Deletes the directory and releases its lock (idempotent)."""
        self._finalizer()


@contextlib.contextmanager
def work_beside(index_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Within this block, :func:`work_dir` makes directories beside ``index_dir`` (its parent is created).

    Entering sweeps the work directories that dead writers of this index left beside it.
    """
    target = Path(index_dir).expanduser().absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep(target.parent, _beside_prefix(target))
    token = _BESIDE.set(target)
    try:
        yield
    finally:
        _BESIDE.reset(token)


def work_dir(kind: str) -> WorkDir:
    """A new locked work directory for ``kind`` (``"bm25"``, ``"ondisk"``); stale ones are swept first.

    Beside the index being written inside :func:`work_beside`, else in ``TMPDIR``.
    """
    target = _BESIDE.get()
    if target is None:
        root, prefix = Path(tempfile.gettempdir()), "hybridctx-"
    else:
        root, prefix = target.parent, _beside_prefix(target)
    sweep(root, prefix)
    # The staging name does not start with ``prefix``: no sweep looks at it before it is locked.
    staging = Path(tempfile.mkdtemp(prefix=f"{prefix.rstrip('-')}new-", dir=root))
    fd = _lock(staging)
    path = root / f"{prefix}{kind}-{secrets.token_hex(6)}"
    try:
        os.rename(staging, path)
    except BaseException:
        _remove(str(staging), fd)
        raise
    return WorkDir(path, fd)


def sweep(root: Path, prefix: str) -> int:
    """Removes work directories in ``root`` named ``prefix...`` whose owner is gone; returns how many."""
    if os.name != "posix":
        return 0
    import fcntl

    removed = 0
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return 0
    for path in candidates:
        lock = path / _LOCK_FILE
        try:
            fd = os.open(lock, os.O_RDWR)  # no lock file: not one of ours (or an old version's): left alone
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its owner is alive
            os.close(fd)
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)
        logger.info("removed %s, left by a process that died", path)
        removed += 1
    return removed


def _beside_prefix(target: Path) -> str:
    return f".{target.name}.work-"


def _lock(directory: Path) -> int | None:
    if os.name != "posix":
        return None
    import fcntl

    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _remove(path: str, fd: int | None) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if fd is not None:
        os.close(fd)
