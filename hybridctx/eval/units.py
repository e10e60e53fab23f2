"""How the peers cut documents into units and pack ranked units into a budget.

Why: every peer is judged by exact character ranges, so the units LlamaIndex
makes (``SentenceSplitter`` chunks, ``SentenceWindowNodeParser`` sentences)
must map back to exact offsets, and every peer must fill its budget by the
same rule. This module owns both, and the BM25 terms of English and Chinese.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from hybridctx.eval.scoring import PackedRange
from hybridctx.packing.tokens import TokenCounter, get_counter

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode

__all__ = ["GreedyPacker", "chunk_ranges", "lexical_tokens", "sentence_ranges", "window_ranges"]

logger = logging.getLogger(__name__)

Ranges = list[tuple[int, int]]


class GreedyPacker:
    """Packs ranked ``(doc_id, start, end)`` units into an exact token budget.

    A unit is added when the token total still fits, else skipped for the next.
    A unit that overlaps or touches packed text of its document merges with it
    and the merged range is counted anew, so no character is sent twice and the
    total is exactly what :func:`hybridctx.eval.scoring.check_budget` counts.
    """

    def __init__(self, texts: Mapping[str, str], budget: int, counter: TokenCounter) -> None:
        self.texts = texts
        self.budget = budget
        self.counter = counter
        self.used = 0
        self._ranges: dict[str, list[list[int]]] = {}  # doc -> [[start, end, tokens], ...]

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def offer(self, doc_id: str, start: int, end: int, tokens: int | None = None) -> bool:
        """Try to add one unit.

        Args:
            doc_id: its document.
            start: first char.
            end: one past its last char.
            tokens: its own token count, if known (saves a count).

        Returns:
            Whether the unit's text is now packed.
        """
        if end <= start:
            return False
        packed = self._ranges.setdefault(doc_id, [])
        touching = [r for r in packed if r[0] <= end and r[1] >= start]
        if not touching:
            if tokens is None:
                tokens = self.counter.count(self.texts[doc_id][start:end])
            if self.used + tokens > self.budget:
                return False
            packed.append([start, end, tokens])
            self.used += tokens
            return True
        lo, hi = min(start, *(r[0] for r in touching)), max(end, *(r[1] for r in touching))
        if len(touching) == 1 and (lo, hi) == (touching[0][0], touching[0][1]):
            return True  # already inside packed text
        old = sum(r[2] for r in touching)
        new = self.counter.count(self.texts[doc_id][lo:hi])
        if self.used - old + new > self.budget:
            return False
        packed[:] = [r for r in packed if not any(r is t for t in touching)] + [[lo, hi, new]]
        self.used += new - old
        return True

    def ranges(self) -> list[PackedRange]:
        """The packed ranges: documents in first-packed order, ranges by position."""
        return [(d, s, e) for d, spans in self._ranges.items() for s, e, _ in sorted(spans)]


def chunk_ranges(doc_id: str, text: str, chunk_size: int, chunk_overlap: int) -> Ranges:
    """Char ranges of LlamaIndex ``SentenceSplitter`` chunks, in document order."""
    from hybridctx.eval.requires import eval_import

    Document = eval_import("llama_index.core", "the LlamaIndex chunk peers").Document
    SentenceSplitter = eval_import("llama_index.core.node_parser", "the LlamaIndex chunk peers").SentenceSplitter

    splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, include_prev_next_rel=False)
    nodes = splitter.get_nodes_from_documents([Document(text=text, id_=doc_id)])
    # SentenceSplitter counts in cl100k_base (LlamaIndex's default tokenizer); a chunk
    # repeats at most the last ``chunk_overlap`` tokens of the one before it.
    counter = get_counter("cl100k_base")

    def floor(prev_start: int, prev_end: int) -> int:
        overlap = _suffix_chars(text[prev_start:prev_end], chunk_overlap + 4, counter)
        return max(prev_start + 1, prev_end - overlap)

    return [r for r in _node_ranges(nodes, text, doc_id, floor) if text[r[0] : r[1]].strip()]


def sentence_ranges(doc_id: str, text: str, window: int) -> Ranges:
    """Char ranges of the sentences ``SentenceWindowNodeParser`` makes, in document order.

    The parser's default splitter (NLTK punkt) does not split Chinese, so its
    pieces are further cut after ``。！？；…`` (and any closing quotes).
    """
    from hybridctx.eval.requires import eval_import

    Document = eval_import("llama_index.core", "the sentence-window peer").Document
    SentenceWindowNodeParser = eval_import("llama_index.core.node_parser",
                                           "the sentence-window peer").SentenceWindowNodeParser

    parser = SentenceWindowNodeParser.from_defaults(
        window_size=window, sentence_splitter=_sentence_splitter(), include_prev_next_rel=False
    )
    nodes = parser.get_nodes_from_documents([Document(text=text, id_=doc_id)])
    ranges = _node_ranges(nodes, text, doc_id, lambda _start, end: end)  # sentences never overlap
    return [r for r in ranges if text[r[0] : r[1]].strip()]


def window_ranges(sentences: Ranges, window: int) -> Ranges:
    """For each sentence, the span from ``window`` sentences before to ``window`` after.

    This is the text ``MetadataReplacementPostProcessor`` puts in a sentence's
    place (there re-joined by spaces; here the original characters).
    """
    last = len(sentences) - 1
    return [(sentences[max(0, i - window)][0], sentences[min(last, i + window)][1]) for i in range(len(sentences))]


def _suffix_chars(text: str, tokens: int, counter: TokenCounter) -> int:
    """Length of the longest suffix of ``text`` with at most ``tokens`` tokens."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(text[len(text) - mid :]) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _node_ranges(nodes: Sequence[BaseNode], text: str, doc_id: str, floor: Callable[[int, int], int]) -> Ranges:
    """Char ranges of parser nodes, which come in document order.

    LlamaIndex sets ``start/end_char_idx`` by searching each node's text from
    one past the previous node's start, which lands on an earlier copy when a
    short sentence also occurs inside the previous one (43 of 6,832 sentences
    of the first leval documents). A node here must start at or after
    ``floor(prev_start, prev_end)``: the previous end for sentences, the
    previous end less the chunk overlap for chunks. Nodes whose offsets break
    that are located again by search from the floor.
    """
    out: Ranges = []
    moved = lost = 0
    prev: tuple[int, int] | None = None
    for node in nodes:
        content = node.get_content()
        start, end = node.start_char_idx, node.end_char_idx
        lowest = 0 if prev is None else floor(*prev)
        if start is None or end is None or start < lowest or text[start:end] != content:
            moved += 1
            start = text.find(content, lowest)
            if start < 0 and prev is not None:
                start = text.find(content, prev[0] + 1)  # LlamaIndex's own rule, as a last resort
            if start < 0:
                lost += 1
                continue
            end = start + len(content)
        out.append((start, end))
        prev = (start, end)
    if moved:
        logger.info("%s: %d of %d nodes had missing or out-of-order offsets, found by search", doc_id, moved, len(nodes))
    if lost:
        logger.warning("%s: %d of %d nodes were not found in the text and are dropped", doc_id, lost, len(nodes))
    return out


_CJK_END = re.compile(r"[。！？；…]+[”’」』）)\"']*")


def _sentence_splitter() -> Callable[[str], list[str]]:
    from hybridctx.eval.requires import eval_import

    split_by_sentence_tokenizer = eval_import("llama_index.core.node_parser.text.utils",
                                              "the sentence-window peer").split_by_sentence_tokenizer

    punkt = split_by_sentence_tokenizer()

    def split(text: str) -> list[str]:
        out: list[str] = []
        for piece in punkt(text):
            cut = 0
            for match in _CJK_END.finditer(piece):
                out.append(piece[cut : match.end()])
                cut = match.end()
            if cut < len(piece):
                out.append(piece[cut:])
        return out

    return split


_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")


def lexical_tokens(text: str) -> list[str]:
    """BM25 terms: lowercased words outside Chinese runs (less English stopwords), jieba words inside."""
    import jieba

    from hybridctx.eval.requires import eval_import

    STOPWORDS_EN = eval_import("bm25s.stopwords", "the BM25 peer's terms").STOPWORDS_EN

    stop = set(STOPWORDS_EN)
    out: list[str] = []
    cursor = 0
    for run in _CJK_RUN.finditer(text):
        out.extend(w for w in _WORD.findall(text[cursor : run.start()].lower()) if w not in stop)
        out.extend(w for w in jieba.lcut(run.group()) if w.strip())
        cursor = run.end()
    out.extend(w for w in _WORD.findall(text[cursor:].lower()) if w not in stop)
    return out
