"""How many requests the gateway works on at once, and how long the rest may wait.

Why its own module: each admitted request holds a worker thread, an upstream
connection and, while it streams, memory for its context; an unbounded number
would exhaust them and slow every request. A request waits (first come, first
served) at most ``max_wait_s`` for a place and is then refused with 429 and
``Retry-After``, which OpenAI clients honour. A place is given back when the
work ends, not when its client leaves, so an abandoned request still counts
until its deadline ends it.
"""

from __future__ import annotations

import asyncio

from hybridctx.errors import ConfigError

__all__ = ["Admission", "Busy"]


class Busy(Exception):
    """No place became free within the wait."""


class Admission:
    """At most ``max_active`` requests at once; others wait up to ``max_wait_s``.

    Args:
        max_active: requests worked on at once (>= 1).
        max_wait_s: how long a request waits for a place (0: refused at once when none is free).
    """

    def __init__(self, max_active: int, max_wait_s: float) -> None:
        if max_active < 1 or not max_wait_s >= 0:
            raise ConfigError(f"max_active must be >= 1 and max_wait_s >= 0; got {max_active}, {max_wait_s}")
        self.max_active = max_active
        self.max_wait_s = max_wait_s
        self._slots = asyncio.Semaphore(max_active)  # bound to the loop on first use
        self._loop: asyncio.AbstractEventLoop | None = None
        self.active = 0

    async def acquire(self) -> None:
        """Take a place, waiting at most ``max_wait_s``.

        Raises:
            Busy: none became free in time.
        """
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.max_wait_s or 0.001)
        except asyncio.TimeoutError:
            raise Busy(f"all {self.max_active} places are taken") from None
        self.active += 1

    def release_from_thread(self) -> None:
        """Give a place back from a worker thread (a no-op once the loop has closed)."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self.release)
        except RuntimeError:  # the server is shutting down; nothing waits any more
            pass

    def release(self) -> None:
        """Give a place back (on the event loop)."""
        self.active -= 1
        self._slots.release()
