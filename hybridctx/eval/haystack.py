"""Haystacks for the needle-in-a-haystack test: load, cut to a length, hide needles.

Why: a needle test is only as fair as its placement. The haystack is every
``.txt``/``.md`` file of a directory (sorted by path, joined by blank lines),
repeated when a length needs more text; it is cut to a length as a run of
*whole* sentences, and needles go in *between* two sentences (the boundary at
or before the requested depth, as Kamradt moves the needle back to the
previous period), followed by the same whitespace the boundary had, so each
needle is a sentence of its own and everything around it is untouched.

Sentence boundaries are :func:`hybridctx.ingest.segmentation.split_sentences`, the
rules the index itself uses; the haystack is split once (a blank line always
ends a sentence, so the split of the repeated text is the repeated split).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from hybridctx.errors import InputError
from hybridctx.eval.needles import Language, Needle
from hybridctx.packing.tokens import TokenCounter, count_many

__all__ = ["BUILTIN_HAYSTACKS", "Context", "Haystack", "PlacedNeedle", "Unit", "load_haystack"]

Unit = Literal["tokens", "chars"]
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
#: Haystacks shipped with the package, by the name ``--haystack`` accepts.
BUILTIN_HAYSTACKS = {"alice": SAMPLES / "alice_in_wonderland.txt",
                     "xiyouji": Path(__file__).resolve().parent / "haystacks" / "xiyouji"}
_JOIN = "\n\n"
_SUFFIXES = (".txt", ".md")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class PlacedNeedle:
    """A needle as hidden in one trial's document: ``doc[start:end] == needle.text``."""

    needle: Needle
    depth: float
    start: int
    end: int


@dataclass(frozen=True, eq=False)
class Context:
    """A haystack cut to one length: whole sentences, and where each one starts.

    Attributes:
        length: the length asked for.
        unit: ``tokens`` (of the counter) or ``chars``.
        text: the cut text.
        sentences: ``(n, 2) int64`` char ranges of its sentences.
        positions: ``(n + 1,) float64`` units before each sentence (the last
            entry is ``size``); depths are measured on it.
        size: units of ``text``, exact, ``<= length``.
        copies: how many copies of the haystack it took.
        language: the haystack's language (decides the gap a needle gets where there is none).
    """

    length: int
    unit: Unit
    text: str
    sentences: np.ndarray
    positions: np.ndarray
    size: int
    copies: int
    language: Language = "en"

    def insert(self, placements: Sequence[tuple[float, Needle]]) -> tuple[str, tuple[PlacedNeedle, ...]]:
        """Hide needles at depths (percent of ``size``), each at a sentence boundary.

        Needles at the same boundary keep their given order. They come on top
        of ``size``: a 128k-token context with a needle is 128k tokens plus the needle.

        Returns:
            The document and the needles' char ranges in it (in the given order).
        """
        n = len(self.sentences)
        starts, ends = self.sentences[:, 0], self.sentences[:, 1]
        spots = []
        for k, (depth, needle) in enumerate(placements):
            boundary = int(np.searchsorted(self.positions, depth / 100.0 * self.size, side="right")) - 1
            spots.append((min(max(boundary, 0), n), k, depth, needle))
        default_gap = " " if self.language == "en" else ""
        pieces: list[str] = []
        placed: dict[int, PlacedNeedle] = {}
        done, length = 0, 0
        for boundary, k, depth, needle in sorted(spots, key=lambda s: (s[0], s[1])):
            if boundary < n:  # before sentence `boundary`, followed by the gap that preceded it
                at = int(starts[boundary])
                lo, hi = (boundary - 1, boundary) if boundary > 0 else (0, 1)
            else:  # after the last sentence, preceded by the gap before it
                at = int(ends[n - 1])
                lo, hi = n - 2, n - 1
            gap = self.text[int(ends[lo]) : int(starts[hi])] if 0 <= lo < hi < n else default_gap
            if self.language == "en" and not gap:
                gap = default_gap
            pieces.append(self.text[done:at])
            length += at - done
            done = at
            before, after = ("", gap) if boundary < n else (gap, "")
            start = length + len(before)
            pieces.append(before + needle.text + after)
            length += len(before) + len(needle.text) + len(after)
            placed[k] = PlacedNeedle(needle, depth, start, start + len(needle.text))
        pieces.append(self.text[done:])
        return "".join(pieces), tuple(placed[k] for k in range(len(placements)))


@dataclass(frozen=True, eq=False)
class Haystack:
    """The text needles are hidden in, split into sentences once.

    Attributes:
        source: where it was read from.
        files: the files, in the order they were joined.
        text: the files' texts (stripped) joined by a blank line.
        sentences: ``(n, 2) int64`` sentence char ranges of ``text``.
        language: ``zh`` when most of it is Chinese, else ``en``.
    """

    source: str
    files: tuple[str, ...]
    text: str
    sentences: np.ndarray
    language: Language
    _units: dict = field(default_factory=dict, init=False, repr=False)  # cut() cache: per-sentence unit counts

    def cut(self, length: int, unit: Unit, counter: TokenCounter) -> Context:
        """The longest run of whole sentences from the start, repeated as needed, of at most ``length`` units.

        Raises:
            InputError: not even the first sentence fits.
        """
        base = self.text
        period = len(base) + len(_JOIN)
        piece_units, base_units = self._piece_units(unit, counter)
        copies = max(1, math.ceil(length / max(base_units, 1)))
        text = _JOIN.join([base] * copies)
        sentences = np.concatenate([self.sentences + k * period for k in range(copies)])
        units = np.tile(piece_units, copies)
        positions = np.concatenate([[0.0], np.cumsum(units, dtype=np.float64)])
        if unit == "chars":
            m = int(np.searchsorted(sentences[:, 1], length, side="right"))
            size, scale = (int(sentences[m - 1, 1]) if m else 0), 1.0
        else:
            m, size, scale = _fit_tokens(text, sentences, positions, length, counter)
        if m == 0:
            raise InputError(
                f"a context of {length} {unit} cannot hold the first sentence of the haystack "
                f"'{self.source}'; use a larger length"
            )
        cut = text[: int(sentences[m - 1, 1])]
        first = float(counter.count(text[: int(sentences[0, 0])])) if unit == "tokens" else float(sentences[0, 0])
        pos = np.minimum(positions[: m + 1] * scale + first, size)
        pos[m] = size
        used = math.ceil(len(cut) / period)
        return Context(length, unit, cut, sentences[:m].copy(), pos, size, used, self.language)

    def _piece_units(self, unit: Unit, counter: TokenCounter) -> tuple[np.ndarray, int]:
        """Units of each sentence with the whitespace after it (the join for the last), and of the whole copy."""
        key = (unit, getattr(counter, "name", id(counter)))
        if key not in self._units:
            bounds = np.append(self.sentences[1:, 0], len(self.text))
            pieces = [self.text[int(a) : int(b)] for a, b in zip(self.sentences[:, 0], bounds)]
            pieces[-1] += _JOIN
            if unit == "chars":
                sizes = np.asarray([len(p) for p in pieces], dtype=np.int64)
                total = len(self.text) + len(_JOIN)
            else:
                sizes = np.asarray(count_many(counter, pieces), dtype=np.int64)
                total = counter.count(self.text + _JOIN)
            self._units[key] = (sizes, total)
        return self._units[key]


def _fit_tokens(text: str, sentences: np.ndarray, positions: np.ndarray, length: int,
                counter: TokenCounter) -> tuple[int, int, float]:
    """``(m, tokens, scale)``: the most whole sentences whose exact token count is ``<= length``.

    The per-sentence counts (``positions``) overestimate a little, as BPE merges
    across their joins; they guide, scaled by what the exact counts of a few
    whole prefixes say, and the exact count decides.
    """
    n = len(sentences)
    best = (0, 0, 1.0)
    tried: set[int] = set()
    m = min(n, int(np.searchsorted(positions, length, side="right")) - 1)
    for _ in range(8):
        if m < 1 or m in tried:
            break
        tried.add(m)
        size = counter.count(text[: int(sentences[m - 1, 1])])
        scale = size / positions[m]
        guess = min(n, int(np.searchsorted(positions * scale, length, side="right")) - 1)
        if size <= length:
            if m > best[0]:
                best = (m, size, scale)
            if guess <= m:
                break
            m = guess
        else:
            m = min(m - 1, guess)
    return best


def load_haystack(path: str | Path | None = None) -> Haystack:
    """Read a haystack: a shipped name (``alice``, ``xiyouji``), a text file, or a directory of them.

    A directory contributes every ``.txt`` and ``.md`` file below it, sorted by
    relative path (reproducible, unlike filesystem order).

    Raises:
        InputError: the path does not exist, holds no text files, or only empty
            or undecodable ones.
    """
    from hybridctx.ingest.segmentation import split_sentences

    if path is None:
        path = "alice"
    if str(path) in BUILTIN_HAYSTACKS and not Path(path).exists():
        path = BUILTIN_HAYSTACKS[str(path)]
    root = Path(path)
    if root.is_dir():
        files = sorted((p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES),
                       key=lambda p: p.relative_to(root).as_posix())
        if not files:
            raise InputError(f"haystack directory '{root}' has no .txt or .md files; give a directory of text files")
    elif root.is_file():
        files = [root]
    else:
        names = ", ".join(BUILTIN_HAYSTACKS)
        raise InputError(f"haystack '{path}' does not exist; give a directory of .txt files or one of: {names}")
    texts = []
    for f in files:
        try:
            texts.append(f.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read haystack file '{f}' as UTF-8 text: {exc}") from exc
    text = _JOIN.join(t for t in texts if t)
    if not text:
        raise InputError(f"haystack '{root}' has only empty files; give files with text")
    sentences = np.asarray(split_sentences(text), dtype=np.int64).reshape(-1, 2)
    if not len(sentences):
        raise InputError(f"haystack '{root}' has no sentences; give files with text")
    cjk = len(_CJK.findall(text)) / max(1, sum(1 for ch in text if not ch.isspace()))
    return Haystack(str(root), tuple(str(f) for f in files), text, sentences, "zh" if cjk > 0.3 else "en")
