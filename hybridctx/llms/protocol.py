"""The LLM protocol and the record of one completion.

Why a protocol: retrieval, routing and evaluation only need "messages in, text
out, with token counts and timing". Any backend (an OpenAI-compatible server, a
local transformers model, a plug-in) that provides ``generate`` fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

__all__ = ["LLM", "Completion", "Message", "TokenCallback"]

#: One chat message: ``{"role": "system"|"user"|"assistant", "content": str}``.
Message = dict[str, Any]

#: Called with each piece of text as a streaming model produces it.
TokenCallback = Callable[[str], None]


@dataclass(frozen=True)
class Completion:
    """What a model answered, and what it cost.

    Attributes:
        text: the generated text (special tokens removed).
        prompt_tokens: tokens of the prompt as the model counted them (the
            server's ``usage`` when it reports one, else the client's estimate).
        completion_tokens: tokens generated.
        seconds: wall time of the call, retries included.
        model: the model that answered.
        finish_reason: ``stop`` (end of text), ``length`` (``max_tokens``
            reached), or whatever the server reported; ``None`` when unknown.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    model: str
    finish_reason: str | None = None

    @property
    def truncated(self) -> bool:
        """True when generation stopped because ``max_tokens`` was reached."""
        return self.finish_reason == "length"

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
            "model": self.model,
            "finish_reason": self.finish_reason,
        }


@runtime_checkable
class LLM(Protocol):
    """A chat model that answers a list of messages.

    ``name`` and ``window`` may be plain attributes or properties. A backend
    may also accept ``deadline_s`` (a float, or ``None``) in ``generate``: the
    most seconds the call may take, after which it raises ``LLMError``; the
    built-in backends do, and ``answer_question`` passes what is left of its
    own deadline to any backend that does.
    """

    @property
    def name(self) -> str:
        """The model's name, as logged and reported."""
        ...

    @property
    def window(self) -> int:
        """The most tokens (prompt plus completion) the model accepts."""
        ...

    def generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stream: bool = False,
        on_token: TokenCallback | None = None,
    ) -> Completion:
        """Answer ``messages``.

        Args:
            messages: the chat, oldest first.
            max_tokens: the most tokens to generate.
            temperature: 0 means greedy (deterministic) decoding.
            stream: produce the answer piece by piece, calling ``on_token``.
            on_token: called with each new piece of text when streaming.

        Raises:
            ContextLengthError: the prompt plus ``max_tokens`` exceeds the window.
            LLMError: the backend failed.
        """
        ...
