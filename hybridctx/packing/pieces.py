"""Packing pieces of text that some other library retrieved, to an exact token budget.

Why: the LangChain packer and the LlamaIndex postprocessor receive documents or
nodes from any retriever, not only hybridctx's. Those pieces may carry a
document id and a char offset (hybridctx's own spans, LangChain splitters with
``add_start_index=True``, LlamaIndex nodes with ``start_char_idx``) or nothing at
all. This module turns them into span candidates for :func:`hybridctx.packing.packer.pack`
so that they get the same guarantees as hybridctx's own spans: the rendered text
fits the budget in the target tokenizer, an over-long piece is cut to whole
sentences rather than dropped, overlapping pieces of one document are merged so
no character is packed twice, and the result reads in document order. It knows
nothing of either framework.

How pieces are laid out. A *located* piece (document id and start offset, and an
end offset, when given, that agrees with its length) is placed at its offset in
a sparse copy of its document: only the stretches covered by pieces exist, so
offsets reach the packer unchanged and any two pieces that share characters
must agree on them (a piece that disagrees is treated as unlocated). Unlocated
pieces are packed as documents of their own. Selection is by score (each
piece's score when every piece has one, else input order, best first); the
layout is document order: documents in order of their first piece in the
input, pieces of a document by offset, unlocated pieces where they stood.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from hybridctx.datatypes import Span
from hybridctx.errors import BudgetError
from hybridctx.packing.packer import SpanCandidate, pack, render
from hybridctx.ingest.segmentation import split_sentences
from hybridctx.packing.tokens import TokenCounter, get_counter

__all__ = ["PackedPiece", "PackedPieces", "Piece", "pack_pieces"]

logger = logging.getLogger(__name__)

# Between the stretches of a sparse document; never rendered, as no span crosses it.
_GAP = "\n\n"


@dataclass(frozen=True)
class Piece:
    """One retrieved piece of text, as a framework hands it over.

    Attributes:
        text: the text.
        doc_id: id of the document it comes from, when known.
        start: char offset of ``text`` in that document, when known.
        end: char offset one past its end; when given it must equal
            ``start + len(text)`` for the piece to count as located.
        score: relevance, higher is better; ``None`` when unknown.
        label: what its source marker shows; default ``doc_id``, else
            ``piece N`` (``N`` its 1-based input position).
    """

    text: str
    doc_id: str | None = None
    start: int | None = None
    end: int | None = None
    score: float | None = None
    label: str | None = None


@dataclass(frozen=True)
class PackedPiece:
    """A run of whole sentences packed from one or more input pieces.

    Attributes:
        sources: input positions of the pieces it overlaps, best score first;
            more than one when overlapping pieces of a document were merged.
        doc_id: the document id (``None`` for an unlocated piece without one).
        located: whether ``start``/``end`` are offsets in the document; if not,
            they are offsets in the text of ``sources[0]``.
        start: char offset of ``text``.
        end: char offset one past its end.
        text: the packed text, exactly as it appears in the context.
        score: relevance used for selection.
        tokens: tokens of ``text`` alone.
        trimmed: sentences of a source piece were left out to fit.
        marker: 1-based position in the context (the ``[k]`` of its marker line).
    """

    sources: tuple[int, ...]
    doc_id: str | None
    located: bool
    start: int
    end: int
    text: str
    score: float
    tokens: int
    trimmed: bool
    marker: int


@dataclass(frozen=True)
class PackedPieces:
    """What :func:`pack_pieces` made of its input.

    Attributes:
        context: the rendered text (``render`` of the packed pieces).
        tokens: true token count of ``context``, at most ``budget - reserve``.
        budget: the budget asked for.
        tokenizer: name of the counter that counted ``tokens``.
        pieces: packed pieces in document order.
        dropped: input positions of pieces left out entirely.
    """

    context: str
    tokens: int
    budget: int
    tokenizer: str
    pieces: tuple[PackedPiece, ...]
    dropped: tuple[int, ...]


@dataclass
class _Stretch:
    """A covered stretch of a sparse document."""

    real_start: int
    text: str
    at: int = 0  # where it starts in the sparse text

    @property
    def real_end(self) -> int:
        return self.real_start + len(self.text)


@dataclass
class _Group:
    """What the packer sees as one document: a sparse document or one unlocated piece."""

    label: str
    doc_id: str | None
    located: bool
    rank: int  # input position of its first piece: documents keep their input order
    text: str = ""
    stretches: tuple[_Stretch, ...] = ()
    members: tuple[tuple[int, int, int], ...] = ()  # (sparse start, sparse end, input position)


def pack_pieces(
    pieces: Sequence[Piece],
    budget: int,
    tokenizer: str | TokenCounter = "cl100k_base",
    *,
    reserve: int = 0,
    markers: bool = True,
    allow_trim: bool = True,
) -> PackedPieces:
    """Pack foreign pieces of text into ``budget - reserve`` tokens, in document order.

    Args:
        pieces: the pieces, best first when they have no scores.
        budget: token budget of the rendered context.
        tokenizer: a tokenizer name for :func:`~hybridctx.packing.tokens.get_counter`
            or a token counter.
        reserve: tokens to keep free inside ``budget``.
        markers: precede each piece with a ``[k] label`` line; without markers
            pieces are joined by a blank line, as LlamaIndex's synthesizers join
            node texts.
        allow_trim: cut a piece that does not fit to the whole sentences at its
            start that do, instead of dropping it.

    Returns:
        The packed pieces; their rendered ``context`` has ``tokens <= budget - reserve``.

    Raises:
        BudgetError: ``budget`` is not positive or ``reserve`` leaves nothing.
    """
    if budget <= 0:
        raise BudgetError(f"budget is {budget} tokens; give a positive budget")
    if not 0 <= reserve < budget:
        raise BudgetError(f"reserve of {reserve} tokens must be >= 0 and below the budget of {budget}")
    counter = get_counter(tokenizer) if isinstance(tokenizer, str) else tokenizer
    groups, candidates, scores = _plan(pieces)
    texts = {key: group.text for key, group in groups.items()}
    limit = target = budget - reserve
    spans: list[Span] = []
    context, tokens = "", 0
    while target > 0:
        packed = pack(candidates, texts, target, counter, order="relevance", markers=markers,
                      allow_trim=allow_trim)
        # Markers carry the labels, and the layout is ours: count the string we return.
        spans = sorted(packed.spans, key=lambda s: (groups[s.doc_id].rank, s.start))
        context = render([_relabel(s, groups[s.doc_id].label) for s in spans], markers=markers)
        tokens = counter.count(context) if context else 0
        if tokens <= limit:
            break
        target -= tokens - limit
    else:
        spans, context, tokens = [], "", 0

    out = [_packed_piece(span, groups[span.doc_id], marker, scores) for marker, span in enumerate(spans, 1)]
    used = {i for p in out for i in p.sources}
    dropped = tuple(i for i in range(len(pieces)) if i not in used)
    logger.debug("packed %d of %d pieces into %d of %d tokens (reserve %d)",
                 len(out), len(pieces), tokens, budget, reserve)
    return PackedPieces(context, tokens, budget, counter.name, tuple(out), dropped)


def _plan(pieces: Sequence[Piece]) -> tuple[dict[str, _Group], list[SpanCandidate], list[float]]:
    """Group the pieces into packer documents and make one candidate per usable piece."""
    scored = all(p.score is not None and not math.isnan(p.score) for p in pieces)
    scores = [float(p.score) if scored else float(len(pieces) - i) for i, p in enumerate(pieces)]  # type: ignore[arg-type]
    located: dict[str, list[int]] = {}
    loose: list[int] = []
    for i, piece in enumerate(pieces):
        if not piece.text.strip():
            continue
        if _is_located(piece):
            located.setdefault(piece.doc_id, []).append(i)  # type: ignore[arg-type]
        else:
            loose.append(i)

    groups: dict[str, _Group] = {}
    candidates: list[SpanCandidate] = []
    for doc_id, members in located.items():
        group, rejected = _sparse_document(doc_id, members, pieces)
        loose.extend(rejected)
        if group.members:
            groups[doc_id] = group
    for i in sorted(loose):
        piece = pieces[i]
        label = key = _label(piece, i)
        # The key is what the packer's marker estimate sees: the label itself, unless taken.
        n = 1
        while key in groups:
            n += 1
            key = f"{label} ({n})"
        groups[key] = _Group(label, piece.doc_id, False, i, piece.text, members=((0, len(piece.text), i),))

    for key, group in groups.items():
        for lo, _hi, i in group.members:
            sentences = tuple((lo + s, lo + e) for s, e in split_sentences(pieces[i].text))
            # Anchor on the first sentence: a foreign piece is read from its start.
            candidates.append(SpanCandidate(key, scores[i], sentences, anchor=0))
    # Best first, so that ties in score go to the earlier piece.
    candidates.sort(key=lambda c: -c.score)
    return groups, candidates, scores


def _is_located(piece: Piece) -> bool:
    if piece.doc_id is None or piece.start is None or piece.start < 0:
        return False
    if piece.end is not None and piece.end - piece.start != len(piece.text):
        logger.debug("piece of '%s' at %d..%d holds %d chars; packing it as unlocated",
                     piece.doc_id, piece.start, piece.end, len(piece.text))
        return False
    return True


def _sparse_document(doc_id: str, members: list[int], pieces: Sequence[Piece]) -> tuple[_Group, list[int]]:
    """Lay a document's pieces at their offsets; pieces that contradict the text so far are rejected."""
    stretches: list[_Stretch] = []
    placed: list[int] = []
    rejected: list[int] = []
    for i in sorted(members, key=lambda j: (pieces[j].start or 0, -len(pieces[j].text))):
        piece = pieces[i]
        start = piece.start or 0
        last = stretches[-1] if stretches else None
        if last is None or start >= last.real_end:
            stretches.append(_Stretch(start, piece.text))
        else:
            offset = start - last.real_start
            overlap = last.text[offset:]
            if not piece.text.startswith(overlap[: len(piece.text)]):
                logger.info("piece %d of '%s' at offset %d disagrees with an overlapping piece; "
                            "packing it apart from its document", i, doc_id, start)
                rejected.append(i)
                continue
            if len(piece.text) > len(overlap):
                last.text += piece.text[len(overlap):]
        placed.append(i)
    at = 0
    for stretch in stretches:
        stretch.at = at
        at += len(stretch.text) + len(_GAP)
    starts = [s.real_start for s in stretches]
    member_ranges = []
    for i in placed:
        stretch = stretches[bisect_right(starts, pieces[i].start or 0) - 1]
        lo = stretch.at + (pieces[i].start or 0) - stretch.real_start
        member_ranges.append((lo, lo + len(pieces[i].text), i))
    group = _Group(
        label=_label(pieces[placed[0]], placed[0]) if placed else doc_id,
        doc_id=doc_id,
        located=True,
        rank=min(placed) if placed else 0,
        text=_GAP.join(s.text for s in stretches),
        stretches=tuple(stretches),
        members=tuple(member_ranges),
    )
    return group, rejected


def _label(piece: Piece, position: int) -> str:
    return piece.label or piece.doc_id or f"piece {position + 1}"


def _relabel(span: Span, label: str) -> Span:
    return Span(label, span.start, span.end, span.score, span.tokens, span.text)


def _packed_piece(span: Span, group: _Group, marker: int, scores: Sequence[float]) -> PackedPiece:
    members = [(lo, hi, i) for lo, hi, i in group.members if lo < span.end and span.start < hi]
    sources = sorted((i for _, _, i in members), key=lambda i: (-scores[i], i))
    start, end = span.start, span.end
    if group.located:
        stretch = next(s for s in group.stretches if s.at <= span.start < s.at + len(s.text))
        start = stretch.real_start + span.start - stretch.at
        end = start + len(span.text)
    # Trimmed when some source lost sentences; the whitespace at a piece's edges never counts.
    return PackedPiece(
        sources=tuple(sources), doc_id=group.doc_id, located=group.located, start=start, end=end,
        text=span.text, score=span.score, tokens=span.tokens, marker=marker,
        trimmed=any(not span.start <= lo + lead <= hi - trail <= span.end
                    for lo, hi, lead, trail in _extents(members, group.text)),
    )


def _extents(members: list[tuple[int, int, int]], text: str) -> list[tuple[int, int, int, int]]:
    """``(lo, hi, leading, trailing whitespace)`` of each member in the group's text."""
    out = []
    for lo, hi, _ in members:
        chunk = text[lo:hi]
        out.append((lo, hi, len(chunk) - len(chunk.lstrip()), len(chunk) - len(chunk.rstrip())))
    return out
