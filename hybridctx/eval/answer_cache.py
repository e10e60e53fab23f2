"""Answers kept on disk by model and prompt, and a record of every call an evaluation made.

Why: answering a few hundred questions with a served model costs money and
with the local one costs an hour; a rerun of ``hybridctx eval qa --llm`` (another
table, another plot, one more policy) must cost nothing for the answers it
already has. A completion is stored under the hash of the model's name, its
decoding settings and the exact request (messages, ``max_tokens``,
temperature), one JSON file each, written atomically. :class:`MeteredLLM`
wraps any backend, answers from the cache when it can, and records each call
(tokens, seconds as first measured, whether it came from the cache), so the
report can say what each policy actually spent, escalations included.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridctx.llms.protocol import Completion, Message

__all__ = ["AnswerCache", "Call", "MeteredLLM", "default_answer_cache"]

#: Backend attributes that change what a model answers; part of the cache key when present.
_DECODING_ATTRS = ("repetition_penalty", "loop_ngram")


def default_answer_cache() -> Path:
    """``$HYBRIDCTX_CACHE/answers`` (else the XDG cache): where answers are kept by default."""
    from hybridctx.llms.local import user_cache_dir

    return user_cache_dir() / "answers"


class AnswerCache:
    """Completions in ``root``, one JSON file per (model, prompt) hash."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(model: str, messages: list[Message], **request: Any) -> str:
        payload = json.dumps({"model": model, "messages": messages, **request}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, key: str) -> Completion | None:
        path = self.root / key[:2] / f"{key}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Completion(text=data["text"], prompt_tokens=int(data["prompt_tokens"]),
                              completion_tokens=int(data["completion_tokens"]), seconds=float(data["seconds"]),
                              model=data["model"], finish_reason=data.get("finish_reason"))
        except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: answer again
            return None

    def put(self, key: str, completion: Completion) -> None:
        folder = self.root / key[:2]
        folder.mkdir(parents=True, exist_ok=True)
        data = {**completion.to_json(), "seconds": completion.seconds}
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, ensure_ascii=False)
            os.replace(tmp, folder / f"{key}.json")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


@dataclass(frozen=True)
class Call:
    """One ``generate`` call: what it was asked and what it cost."""

    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cached: bool


class MeteredLLM:
    """An LLM backend seen through the answer cache, recording each call.

    Args:
        llm: the backend (``name`` and ``window`` are passed through).
        cache: where answers are kept; ``None`` keeps none.
    """

    def __init__(self, llm: Any, cache: AnswerCache | None) -> None:
        self.llm = llm
        self.cache = cache
        self.calls: list[Call] = []
        decoding = {a: getattr(llm, a) for a in _DECODING_ATTRS if hasattr(llm, a)}
        self._identity = str(llm.name) + (json.dumps(decoding, sort_keys=True) if decoding else "")

    @property
    def name(self) -> str:
        return str(self.llm.name)

    @property
    def window(self) -> int:
        return int(self.llm.window)

    def take_calls(self) -> list[Call]:
        """The calls since the last ``take_calls``."""
        calls, self.calls = self.calls, []
        return calls

    def generate(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
                 stream: bool = False, on_token: Any = None, **extra: Any) -> Completion:
        key = AnswerCache.key(self._identity, messages, max_tokens=max_tokens, temperature=temperature)
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is None:
            hit = self.llm.generate(messages, max_tokens=max_tokens, temperature=temperature, **extra)
            if self.cache is not None:
                self.cache.put(key, hit)
            cached = False
        else:
            cached = True
        if on_token is not None and hit.text:
            on_token(hit.text)
        self.calls.append(Call(hit.prompt_tokens, hit.completion_tokens, hit.seconds, cached))
        return hit
