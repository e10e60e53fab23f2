"""The prompt that asks a model to answer from a context, and reading its answer.

Why one module: the instructions the model gets and the checks run on its reply
must agree. The system prompt asks for span markers such as ``[1]`` (the markers
``PackedContext.context`` carries) and for one fixed sentence when the context
does not hold the answer; ``says_unanswerable`` recognises that sentence and its
usual paraphrases so that Self-Route can escalate to a larger budget or to the
full context, and ``cited_markers`` lists which spans an answer relied on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from hybridctx.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.datatypes import PackedContext
    from hybridctx.llms.protocol import Message

__all__ = ["UNANSWERABLE", "PromptMode", "build_messages", "cited_markers", "says_unanswerable"]

#: The exact reply asked for when the context does not contain the answer.
UNANSWERABLE = "I cannot answer from the given context."

PromptMode = Literal["retrieval", "full"]

# Kept short and plain: a 135M-parameter model repeats a long system prompt back
# instead of following it; larger models lose nothing.
_SYSTEM = (
    "You are a helpful assistant. Answer questions from the given context only, citing "
    "passage markers such as [1]. If the answer is not in the context, say exactly: {unanswerable}"
)
_CONTEXT_LABEL = {
    "retrieval": "passages retrieved from the documents",
    "full": "the full documents",
}


def build_messages(
    question: str,
    packed_context: str | PackedContext,
    *,
    mode: PromptMode = "retrieval",
) -> list[Message]:
    """The chat that asks a model to answer ``question`` from ``packed_context``.

    The context comes before the question: small models follow the question
    better when it is the last thing they read, and a server can reuse the
    cached prefix when several questions share one context.

    Args:
        question: what to answer.
        packed_context: the rendered context (``PackedContext.context``, blocks
            ``[n] doc_id`` followed by their text), or the ``PackedContext``.
        mode: ``retrieval`` (passages chosen from longer documents) or ``full``
            (the documents in full).

    Returns:
        ``[{"role": "system", ...}, {"role": "user", ...}]``.

    Raises:
        ConfigError: ``mode`` is neither ``retrieval`` nor ``full``.
    """
    if mode not in _CONTEXT_LABEL:
        raise ConfigError(f"unknown prompt mode '{mode}'; use 'retrieval' or 'full'")
    context = packed_context if isinstance(packed_context, str) else packed_context.context
    system = _SYSTEM.format(unanswerable=UNANSWERABLE)
    user = f"Context ({_CONTEXT_LABEL[mode]}):\n{context.strip()}\n\nQuestion: {question.strip()}\nAnswer:"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# Paraphrases of "the context does not hold the answer". They are looked for in
# the first sentence of the answer only: a reply that answers and then remarks that
# some detail "is not mentioned in the context" is not a refusal.
_REFUSALS = re.compile(
    r"""
    \b(?:i|we)\s+(?:cannot|can\s?not|can't|am\s+unable\s+to|are\s+unable\s+to|am\s+not\s+able\s+to)\s+
        (?:answer|determine|find|tell|say|know|provide|identify|infer)\b
    | \b(?:i|we)\s+(?:do\s+not|don't)\s+know\b
    | \bunable\s+to\s+(?:answer|determine|find)\b
    | \bcannot\s+be\s+(?:answered|determined|found|inferred)\b
    | \b(?:context|passages?|text|documents?|excerpts?|sources?)\s+
        (?:does|do)\s*(?:not|n't)\s+
        (?:contain|mention|provide|include|say|specify|state|give|answer|have|tell|discuss|address)\b
    | \bnot\s+(?:mentioned|provided|stated|specified|found|given|contained|included|answered|covered)\s+
        (?:in|by)\s+(?:the\s+)?(?:given\s+|provided\s+)?(?:context|passages?|text|documents?)\b
    | \b(?:there\s+is\s+)?no\s+(?:information|mention|answer|details?)\s+
        (?:about|on|regarding|of|to|in|for)\b
    | \b(?:not\s+enough|insufficient)\s+information\b
    """,
    re.IGNORECASE | re.VERBOSE,
)
_REFUSALS_ZH = re.compile(r"无法(?:回答|确定|根据)|(?:上下文|文中|文本|资料)(?:中)?(?:没有|未)(?:提到|提及|包含|说明)")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")
_MARKERS = re.compile(r"\[\s*(\d+(?:\s*(?:,|-|–)\s*\d+)*)\s*\]")


def says_unanswerable(answer: str) -> bool:
    """Whether ``answer`` declines to answer for want of evidence in the context.

    True for the exact ``UNANSWERABLE`` sentence anywhere in the answer, for an
    empty answer, and for a close paraphrase ("The context does not mention…",
    "I cannot determine…", "not provided in the passages") in its first
    sentence: an answer that answers first and then notes a missing detail is
    not a refusal.

    Args:
        answer: the model's reply.
    """
    text = " ".join(answer.split())
    if not text:
        return True
    norm = text.lower().replace("’", "'")
    if UNANSWERABLE.lower().rstrip(".") in norm:
        return True
    opening = _SENTENCE_END.split(norm, maxsplit=1)[0]
    return bool(_REFUSALS.search(opening) or _REFUSALS_ZH.search(opening))


def cited_markers(answer: str, *, limit: int | None = None) -> list[int]:
    """The span markers an answer cites, in order of first citation, without repeats.

    Understands ``[2]``, ``[1][3]``, ``[1, 2]`` and ranges ``[2-4]``.

    Args:
        answer: the model's reply.
        limit: when given, markers above it (there is no such span, e.g. a
            bracketed year) are ignored.

    Returns:
        1-based marker numbers.
    """
    seen: dict[int, None] = {}
    for match in _MARKERS.finditer(answer):
        for part in match.group(1).split(","):
            bounds = [int(b) for b in re.split(r"\s*[-–]\s*", part.strip())]
            lo, hi = bounds[0], bounds[-1]
            numbers = range(lo, hi + 1) if len(bounds) == 2 and lo <= hi and hi - lo < 100 else bounds
            for n in numbers:
                if n >= 1 and (limit is None or n <= limit):
                    seen.setdefault(n, None)
    return list(seen)
