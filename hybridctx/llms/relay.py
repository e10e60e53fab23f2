"""Handing streamed text to ``on_token`` once, across retries of a cut stream.

Why: when a stream breaks off after some of the answer was already handed on
(printed, sent to a browser), a retry starts the answer again from its first
token. Repeating those pieces would print the answer twice; refusing to retry
would lose it. The relay replays the new attempt against what was handed on,
passes on only what is new, and says so when the new attempt answers
differently (it cannot be spliced onto the old text).
"""

from __future__ import annotations

from hybridctx.errors import LLMError
from hybridctx.llms.protocol import TokenCallback

__all__ = ["Diverged", "Relay"]


class Diverged(LLMError):
    """A retried stream does not repeat the text already handed on."""

    def __init__(self, at: int) -> None:
        self.at = at
        super().__init__(f"the retried stream answered differently from character {at} on")


class Relay:
    """The text of one answer as handed to ``on_token``, over one or more attempts.

    Args:
        on_token: called with each new piece; ``None`` hands nothing on.
    """

    def __init__(self, on_token: TokenCallback | None) -> None:
        self._on_token = on_token
        self._pieces: list[str] = []
        self._sent = 0  # characters handed on so far
        self._replay = ""  # what was handed on, while an attempt catches up with it
        self._pos = 0  # characters of the current attempt seen

    @property
    def sent(self) -> int:
        """Characters handed on so far, over all attempts."""
        return self._sent

    def begin(self) -> None:
        """A new attempt: its text starts again from the first character."""
        self._pos = 0
        self._replay = "".join(self._pieces) if self._sent else ""

    def feed(self, piece: str) -> None:
        """One piece of the current attempt's text.

        Raises:
            Diverged: it differs from what an earlier attempt handed on.
        """
        if not piece:
            return
        start, self._pos = self._pos, self._pos + len(piece)
        if start < self._sent:
            known = self._replay[start:start + len(piece)]
            if not piece.startswith(known):
                offset = next(i for i, (a, b) in enumerate(zip(piece, known)) if a != b)
                raise Diverged(start + offset)
            piece = piece[len(known):]
            if not piece:
                return
        self._pieces.append(piece)
        self._sent += len(piece)
        if self._on_token is not None:
            self._on_token(piece)
