"""The answer to a chat's last user turn: routed, packed and generated the way ``ask`` does it.

Why its own module: the gateway must answer exactly as ``hybridctx ask`` would
(the router's choice, Self-Route's one escalation, the same prompt and the
same citations), so it calls ``answer_question`` and adds only what a chat
brings: the client's system prompt and earlier turns around the prompt ``ask``
builds (their tokens counted into the router's ``prompt_tokens``), the
client's sampling settings, per-request limits that may tighten but never
loosen the operator's caps, and a stream that holds back the first sentence of
an answer until it is known not to be the refusal that escalation would
replace, so a client never sees an answer it is about to be given again.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

from hybridctx.errors import HybridCtxError
from hybridctx.llms.protocol import Completion, Message

__all__ = ["ClientGone", "HeldStream", "TurnResult", "TurnSettings", "Upstream", "merge_limits", "run_turn"]

logger = logging.getLogger(__name__)

#: Limits a request may lower but never raise: the operator's cost and memory caps.
CAPS = ("max_usd", "max_latency_s", "max_kv_gib", "max_budget")
#: Tokens a chat template adds around each message (as the OpenAI-compatible client estimates).
_PER_MESSAGE_TOKENS = 4
_SENTENCE_END = re.compile(r"[.!?。！？]")


class ClientGone(HybridCtxError):
    """The client hung up: the upstream request is abandoned."""


@dataclass(frozen=True)
class Upstream:
    """The OpenAI-compatible server the gateway forwards to.

    Attributes:
        base_url: its API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name it serves.
        api_key: sent as the bearer token (never shown in reprs or logs).
        read_timeout_s: how long the upstream may stay silent.
        max_retries: further attempts after a 429, 5xx or cut reply.
        backoff_s: the first wait between attempts.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    read_timeout_s: float = 60.0
    max_retries: int = 2
    backoff_s: float = 0.5

    def client(self, *, window: int, deadline_s: float, extra_body: Mapping[str, Any] | None = None) -> Any:
        """A client for one request (cheap: it opens no connection until asked)."""
        from hybridctx.llms.openai_compat import OpenAICompatibleLLM

        return OpenAICompatibleLLM(self.base_url, self.model, api_key=self.api_key, api_key_env=None,
                                   timeout_s=self.read_timeout_s, deadline_s=deadline_s,
                                   max_retries=self.max_retries, backoff_s=self.backoff_s, window=window,
                                   extra_body=extra_body)


@dataclass(frozen=True)
class TurnSettings:
    """The operator's settings for every turn.

    Attributes:
        profile: the model profile the router costs against.
        profiles_file: extra or overriding model profiles.
        limits: the route limits (requests may tighten ``CAPS``, set the rest).
        max_tokens: the answer length when a request names none.
        max_tokens_cap: the longest answer a request may ask for.
        timeout_s: the most seconds a turn's LLM calls may take in all.
    """

    profile: str = "smollm2-135m-cpu"
    profiles_file: str | None = None
    limits: Any = None
    max_tokens: int = 512
    max_tokens_cap: int = 4096
    timeout_s: float = 120.0


@dataclass(frozen=True)
class TurnResult:
    """A routed answer and every upstream call it took.

    Attributes:
        answer: ``ask``'s ``Answer`` (route, context, citations, timings).
        completions: each upstream completion, the escalation's included.
        index: the name of the index that answered.
    """

    answer: Any
    completions: tuple[Completion, ...]
    index: str

    @property
    def text(self) -> str:
        """The final answer as the upstream sent it (``Answer.text`` is stripped)."""
        return self.completions[-1].text if self.completions else self.answer.text

    @property
    def finish_reason(self) -> str:
        return (self.completions[-1].finish_reason if self.completions else None) or "stop"

    @property
    def usage(self) -> dict[str, int]:
        """Tokens over all upstream calls: what the client's question cost."""
        prompt = sum(c.prompt_tokens for c in self.completions)
        completion = sum(c.completion_tokens for c in self.completions)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def merge_limits(base: Any, requested: Mapping[str, Any], **fixed: Any) -> Any:
    """The operator's limits with a request's on top: ``CAPS`` only lower, the rest replace.

    Raises:
        ConfigError: the result is not a valid ``RouteLimits``.
    """
    from hybridctx.routing.router import RouteLimits

    values = asdict(base or RouteLimits())
    for key, value in requested.items():
        if key in CAPS and values.get(key) is not None and value is not None:
            values[key] = min(values[key], value)
        else:
            values[key] = value
    values.update(fixed)
    return RouteLimits.from_mapping(values)


class ChatUpstream:
    """An ``LLM`` that puts a chat's system prompt and earlier turns around ``ask``'s prompt.

    Args:
        llm: the upstream client.
        system: the client's system prompt, appended to ``ask``'s instructions.
        history: the earlier turns, placed between the instructions and the question.
        temperature: the client's (``ask``'s 0 when it gave none).
        cancelled: set when the client hangs up; the next streamed piece ends the request.
    """

    def __init__(self, llm: Any, *, system: str, history: Sequence[Message], temperature: float,
                 cancelled: threading.Event | None = None) -> None:
        self._llm = llm
        self._system = system
        self._history = list(history)
        self._temperature = temperature
        self._cancelled = cancelled
        self.completions: list[Completion] = []

    @property
    def name(self) -> str:
        return str(self._llm.name)

    @property
    def window(self) -> int:
        return int(self._llm.window)

    def generate(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
                 stream: bool = False, on_token: Callable[[str], None] | None = None,
                 deadline_s: float | None = None) -> Completion:
        instructions, question = messages[0], messages[-1]
        system = instructions["content"] + (f"\n\n{self._system}" if self._system else "")
        chat = [{"role": "system", "content": system}, *self._history, question]

        def piece(text: str) -> None:
            if self._cancelled is not None and self._cancelled.is_set():
                raise ClientGone("the client hung up")
            if on_token is not None:
                on_token(text)

        completion = self._llm.generate(chat, max_tokens=max_tokens, temperature=self._temperature,
                                        stream=stream, on_token=piece if stream else on_token,
                                        deadline_s=deadline_s)
        self.completions.append(completion)
        return completion


class HeldStream:
    """Streamed pieces, the first sentence held until it is known not to be a refusal.

    A retrieval answer whose first sentence says the context does not hold
    the answer is replaced by the escalated one; holding that sentence back
    keeps the client from seeing it. Everything after the first sentence (or
    ``hold_chars`` characters) passes at once, piece by piece as it came.
    """

    def __init__(self, emit: Callable[[str], None], *, hold_chars: int = 300) -> None:
        self._emit = emit
        self._hold_chars = hold_chars
        self._held: list[str] = []
        self._state = "holding"  # then "passing", or "refusing" until the escalation or the end

    def feed(self, piece: str) -> None:
        if self._state == "passing":
            self._emit(piece)
            return
        self._held.append(piece)
        if self._state == "holding":
            text = "".join(self._held)
            if _SENTENCE_END.search(text) or len(text) >= self._hold_chars:
                from hybridctx.llms.prompts import says_unanswerable

                if says_unanswerable(text):
                    self._state = "refusing"
                else:
                    self._flush()

    def escalate(self, step: Mapping[str, Any]) -> None:
        """The answer so far is being replaced: drop what was held (a blank line if some was sent)."""
        if self._state == "passing":  # a refusal found after the first sentence; it was already sent
            self._emit("\n\n")
        self._held.clear()
        self._state = "passing"  # the escalated answer is the last: nothing will replace it

    def finish(self) -> None:
        """The answer ended: whatever is still held is the answer."""
        self._flush()

    def _flush(self) -> None:
        held, self._held = self._held, []
        self._state = "passing"
        for piece in held:
            self._emit(piece)


def run_turn(hc: Any, index: str, turn: Any, upstream: Upstream, settings: TurnSettings, *,
             on_token: Callable[[str], None] | None = None,
             cancelled: threading.Event | None = None) -> TurnResult:
    """Answer ``turn`` (a ``ChatTurn``) from ``hc``, as ``ask`` would, through ``upstream``.

    Args:
        hc: the opened index.
        index: its name, for the result.
        turn: the checked request.
        upstream: where answers come from.
        settings: the operator's settings.
        on_token: streaming: called with each piece of the answer as it may be shown.
        cancelled: set when the client hangs up.

    Raises:
        InputError, ConfigError: the question, a document id or a limit is unusable.
        ContextLengthError: the upstream says the prompt exceeds its window.
        LLMError: the upstream gave no answer within the deadline (its retries spent).
        ClientGone: the client hung up.
    """
    from hybridctx.routing.answering import answer_question
    from hybridctx.cli.checks import check_budget
    from hybridctx.routing.profiles import get_profile, profile_counter

    started = time.perf_counter()
    model = get_profile(settings.profile, settings.profiles_file)
    counter = profile_counter(model)
    max_tokens = min(turn.max_tokens or settings.max_tokens, settings.max_tokens_cap)
    around = sum(counter.count(m["content"]) + _PER_MESSAGE_TOKENS for m in turn.history)
    around += counter.count(turn.system) if turn.system else 0
    from hybridctx.routing.router import RouteLimits

    base = settings.limits or RouteLimits()
    limits = merge_limits(base, turn.options.limits, answer_tokens=max_tokens, prompt_tokens=base.prompt_tokens + around)
    budget = check_budget(turn.options.budget, "hybridctx.budget") if turn.options.budget is not None else None
    deadline = min(settings.timeout_s, turn.options.timeout_s or math.inf)
    chat = ChatUpstream(upstream.client(window=model.window, deadline_s=deadline, extra_body=turn.passed_on),
                        system=turn.system, history=turn.history, temperature=turn.temperature or 0.0,
                        cancelled=cancelled)
    held = HeldStream(on_token) if on_token is not None else None
    answer = answer_question(
        hc, turn.question, chat, profile=settings.profile, limits=limits,
        doc_ids=list(turn.options.doc_ids) if turn.options.doc_ids else None, budget=budget,
        max_tokens=max_tokens, on_token=held.feed if held else None, profiles_file=settings.profiles_file,
        deadline_s=deadline, on_escalate=held.escalate if held else None,
        # The session ledger beside the index prices a scope sent within the cache TTL warm. Earlier turns
        # sit before the context in the chat, so only a turn without them keeps the cached prefix.
        session=not turn.history, session_salt=turn.system or "",
    )
    if held is not None:
        held.finish()
    result = TurnResult(answer, tuple(chat.completions), index)
    logger.info("turn on %s: %s%s, %d context tokens in %d spans, %d upstream call(s), %s tokens, %.0f ms",
                index, answer.mode, " (escalated)" if answer.escalated else "", answer.context.tokens,
                len(answer.context.spans), len(chat.completions), result.usage["total_tokens"],
                (time.perf_counter() - started) * 1000)
    return result
