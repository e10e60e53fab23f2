"""Typed, frozen results that cross module boundaries.

Why: bare tuples and dicts drift; these records are what the CLI, the
integrations and the evaluation all agree on. Offsets are Python ``str``
indices (code points) into a document's text exactly as it was given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping


def content_hash(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 text; decides whether re-indexing is needed."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """One document, its text kept verbatim so that every offset maps back.

    Attributes:
        doc_id: stable id (given in JSONL, else derived from the file path).
        text: the exact text; never normalised.
        title: optional title.
        metadata: free-form JSON-serialisable metadata.
        source: where it was read from (path, or path:line for JSONL).
    """

    doc_id: str
    text: str
    title: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class Landmark:
    """A sentence of a document; its end is the landmark a vector stands for.

    Attributes:
        doc_id: the document it belongs to.
        ordinal: 0-based position among the document's sentences.
        start: char offset of the sentence's first character.
        end: char offset one past its last character.
        paragraph: 0-based paragraph number (blank lines separate paragraphs).
    """

    doc_id: str
    ordinal: int
    start: int
    end: int
    paragraph: int = 0


@dataclass(frozen=True)
class Hit:
    """A scored landmark returned by a search (dense, lexical or fused)."""

    row: int
    score: float


@dataclass(frozen=True)
class Span:
    """A run of whole sentences of one document, as packed into a context.

    ``text == document.text[start:end]`` always holds. ``header``, when not
    empty, is the short header path of its first sentence that its marker line
    shows (``RetrievalConfig.header_markers``).
    """

    doc_id: str
    start: int
    end: int
    score: float
    tokens: int
    text: str
    first_sentence: int = 0
    last_sentence: int = 0
    trimmed: bool = False
    header: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 6),
            "tokens": self.tokens,
            "text": self.text,
        }
        if self.header:
            out["header"] = self.header
        return out


@dataclass(frozen=True)
class PackedContext:
    """What a model reads: spans rendered within an exact token budget.

    Attributes:
        query: the question.
        budget: token budget the context had to fit.
        tokenizer: name of the tokenizer that counted ``tokens``.
        tokens: tokens of the whole rendered ``context`` (``<= budget``).
        context: the rendered text, one source marker per span.
        spans: spans in the order they appear in ``context``.
        dropped: candidate spans that did not fit.
        timings_ms: wall time of each stage, in milliseconds.
    """

    query: str
    budget: int
    tokenizer: str
    tokens: int
    context: str
    spans: tuple[Span, ...]
    dropped: tuple[Span, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    query_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.query_id is not None:
            out["id"] = self.query_id
        out.update(
            query=self.query,
            budget=self.budget,
            tokenizer=self.tokenizer,
            tokens=self.tokens,
            context=self.context,
            spans=[s.to_json() for s in self.spans],
            dropped=len(self.dropped),
            timings_ms={k: round(v, 3) for k, v in self.timings_ms.items()},
        )
        return out
