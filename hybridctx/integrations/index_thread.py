"""Running index calls on a thread of their own, or in place.

Why: an index opened from disk answers from any thread (its SQLite tables are
read-only and shared), but an index still being written in this process keeps
a SQLite connection that belongs to the thread that opened it, and async
callers should not block their event loop on a retrieval. An index opened
through :meth:`IndexThread.open` lives on a worker thread of its own and every
call is sent to it: usable from any thread, and awaitable without blocking the
loop. An index the caller opened (:meth:`IndexThread.adopt`) is used in place;
if its tables refuse the calling thread, a ``ConfigError`` says what to do.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from hybridctx.errors import ConfigError

__all__ = ["IndexThread"]

T = TypeVar("T")


class IndexThread:
    """An opened ``HybridContext`` and the thread its calls run on.

    Args:
        hc: the opened index.
        executor: a one-thread executor that opened ``hc``, or ``None`` to use
            ``hc`` in place on the calling thread.
    """

    def __init__(self, hc: Any, executor: ThreadPoolExecutor | None = None) -> None:
        self.hc = hc
        self._executor = executor
        self._owner = executor.submit(threading.get_ident).result() if executor is not None else None

    @classmethod
    def open(cls, index_dir: str | Path, **options: Any) -> IndexThread:
        """Open the index at ``index_dir`` on a worker thread of its own.

        Args:
            index_dir: the index directory.
            **options: passed to ``HybridContext.open`` (``config=``, ``device=``...).
        """
        from hybridctx.facade import HybridContext

        executor = ThreadPoolExecutor(1, thread_name_prefix="hybridctx-index")
        hc = executor.submit(HybridContext.open, index_dir, **options).result()
        return cls(hc, executor)

    @classmethod
    def adopt(cls, hc: Any) -> IndexThread:
        """Use an index opened by the caller in place (from its own thread only)."""
        return hc if isinstance(hc, IndexThread) else cls(hc)

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(hc, *args, **kwargs)`` on the index's thread and return its result."""
        if self._executor is None:
            return self._in_place(fn, *args, **kwargs)
        if threading.get_ident() == self._owner:  # already there: waiting on ourselves would hang
            return fn(self.hc, *args, **kwargs)
        return self._executor.submit(fn, self.hc, *args, **kwargs).result()

    async def acall(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Await ``fn(hc, *args, **kwargs)``; in place (blocking) for an adopted index."""
        if self._executor is None or threading.get_ident() == self._owner:
            return self.call(fn, *args, **kwargs)
        return await asyncio.wrap_future(self._executor.submit(fn, self.hc, *args, **kwargs))

    def close(self) -> None:
        """Let the worker thread end (after the calls already sent)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def _in_place(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(self.hc, *args, **kwargs)
        except sqlite3.ProgrammingError as exc:
            if "thread" not in str(exc):
                raise
            raise ConfigError(
                f"the index at '{getattr(self.hc, 'path', None)}' was opened on another thread, and its "
                "SQLite tables work only there; LangChain runs parallel branches and batch() on worker "
                "threads: build the retriever with from_index(index_dir) so the index gets a thread of its own"
            ) from exc
