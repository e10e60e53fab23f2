"""A wall-clock limit on one LLM request: connection, retries, waits and every read.

Why its own module: a socket timeout bounds each read, not the request. A
server that sends a keep-alive comment every few seconds, or one byte at a
time, never trips it and can hold a caller for ever. A deadline is checked
before each attempt and each wait, and while a read blocks a watchdog thread
shuts the socket down when time is up, which wakes the read at once.
"""

from __future__ import annotations

import math
import socket
import threading
import time

from hybridctx.errors import ConfigError

__all__ = ["Deadline", "check_seconds"]


def check_seconds(name: str, value: float | None) -> float | None:
    """``value`` as a positive, finite number of seconds, or ``None`` (no limit).

    Raises:
        ConfigError: zero, negative, NaN or infinite.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive, finite number of seconds (or None for no limit); got {value!r}")
    return float(value)


class Deadline:
    """The time left to one request.

    Args:
        seconds: the whole allowance from now; ``None`` for none.

    Attributes:
        seconds: the allowance, as given.
        fired: the watchdog cut a read short because time ran out.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._ends = math.inf if seconds is None else time.monotonic() + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        """Seconds left (``inf`` without a deadline; negative once passed)."""
        return self._ends - time.monotonic()

    def timeout(self, per_read: float) -> float:
        """A socket timeout that ends no later than the deadline."""
        return max(min(per_read, self.remaining()), 0.001)

    def watch(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down when the deadline passes, until ``unwatch``."""
        left = self.remaining()
        if sock is None or math.isinf(left):
            return
        timer = threading.Timer(max(left, 0.0), self._fire, args=(sock,))
        timer.daemon = True
        with self._lock:
            self._timer = timer
        timer.start()

    def unwatch(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _fire(self, sock: socket.socket) -> None:
        with self._lock:
            if self._timer is None:  # unwatched meanwhile: the request already ended
                return
            self.fired = True
            try:
                # The plain socket's shutdown, also under TLS: it wakes a blocked read with
                # end-of-file without touching the TLS object another thread is reading with.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
