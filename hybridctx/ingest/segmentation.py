"""Sentence segmentation: where landmarks go.

Why: the sentence is the unit of hybridctx. Each sentence's end is a landmark
that gets one vector, and retrieval returns runs of whole sentences, so a
boundary in the wrong place cuts evidence in half. This module owns the rules
that place those boundaries, for English, Chinese and mixed text, and returns
exact character (code point) offsets into the text as given: the text is never
normalised, so ``text[start:end]`` is always the sentence.

The rules, in order of strength:

* A blank line always ends a sentence; so does Chinese terminal punctuation
  (``。！？；``) together with any closing quotes or brackets after it, and
  ``…``, ``!`` or ``?`` directly before a Chinese character (``他说：“走吧。”然后``
  splits after ``”``).
* English ``.``, ``!``, ``?`` and ellipses end a sentence before whitespace
  unless the next word starts in lower case, or the word before the period is
  an abbreviation (``Mr.``, ``e.g.``, ``No. 5``, initials, ``U.S.``) or a list
  number at the start of a line (``1.``, ``3.3.1.``). Without whitespace they end
  one only before a Chinese character or, as in ``done.Next``, before a
  capitalised word (decimals, URLs and e-mails never match). A semicolon ends
  one before an inline list item (``...; (iv) sublicense``).
* A line that opens a structural unit ends the sentence before it: a dialogue
  turn, a subtitle cue, a session header or a heading, as the structure pass
  (:mod:`hybridctx.ingest.structure`) finds them in any format it reads (chat exports,
  ``Name:`` transcripts, SRT/VTT, Markdown, numbered clauses, 第三回).
* A single newline ends a sentence when the next line opens a unit of its own
  (a list item, a heading) or the line does not stop mid-sentence; it does not
  when prose is hard-wrapped (the line ends in a word or a comma and the next
  line starts in lower case, or, in a hard-wrapped document, the line runs to
  the wrap width).

Sentences with more tokens than an encoder can take are then cut at token
boundaries by :func:`split_long_sentences`. Everything here is pure-Python
regular expressions, fast next to encoding (its MB/s:
``benchmarks/segmentation_alignment.py``), with no model or data file to load. Whitespace means ``str.isspace`` throughout (the
same set as ``\\s`` in :mod:`re`).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from hybridctx.errors import ConfigError
from hybridctx.ingest.structure import extract_structure

__all__ = ["paragraph_numbers", "split_long_sentences", "split_sentences", "structure_boundaries"]

# Closing quotes and brackets that stay with the sentence they close.
_CLOSERS = "\"'”’」』）)】》〕〉］}]»›"
_OPENERS = "\"'“‘「『（(【《〔〈［{[«‹"
# Full-width terminators end a sentence wherever they stand.
_CJK_TERMINATORS = "。！？；｡"
_CJK_CHAR = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3000-\u303f\uff01-\uff60"

_TERMINAL_RUN = re.compile(
    r"(?P<marks>[.!?。！？；｡…⋯]+)"
    rf"[{re.escape(_CLOSERS)}]*"
    # Footnote marks ("end.[3]"), PTB closing quotes ("end . ''") and closing HTML tags
    # ("end . </P>") stay with the sentence they close.
    r"(?:\[\d{1,3}\]|[ ]?''|[ ]?</[A-Za-z][A-Za-z0-9]{0,9}>)*"
)
# "...; (iv) sublicense ...": an inline enumerated item after a semicolon starts a new unit.
_SEMICOLON_ITEM = re.compile(r";(?=[^\S\n]+(?:(?:and|or)[^\S\n]+)?\((?:[ivx]{1,5}|[a-z]|\d{1,2})\)\s)")
# A run of line breaks with the blank lines inside it. It starts at "\n" on purpose: a
# pattern that starts with optional spaces backtracks quadratically over long space runs.
_LINE_BREAKS = re.compile(r"\n(?:[^\S\n]*\n)*")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_NONSPACE = re.compile(r"\S")
_WORD_BEFORE = re.compile(r"\S{1,40}\Z")
_CJK = re.compile(f"[{_CJK_CHAR}]")

# A line that opens a unit of its own: list items, headings (dialogue turns and
# the rest of the structure come from hybridctx.ingest.structure).
_UNIT_START = re.compile(
    r"""
      [-*•·●○▪◦‣⁃>](?=\s)                                 # bullets, quoted lines
    | \#{1,6}\s | \|                                      # markdown headings, table rows
    | \(?(?:\d{1,3}(?:\.\d{1,3})*|[A-Za-z]|[ivxIVX]{1,5})[.)](?=\s)   # 1. 2) (a) iv. 3.2.1.
    | \d{1,3}(?:\.\d{1,3})+(?=\s)                          # 4.14  2.1.3
    | (?:Section|SECTION|Article|ARTICLE|Chapter|CHAPTER|Schedule|SCHEDULE|Exhibit|EXHIBIT)[ ]
    | [一二三四五六七八九十百]+[、．.]                      # 一、
    | [（(][一二三四五六七八九十\d]{1,3}[）)]              # （三）
    | 第[一二三四五六七八九十百千\d]{1,6}[章回节節条條篇部卷]
    """,
    re.VERBOSE,
)
# List numbers that a period follows at the start of a line: "1.", "3.3.1.", "iv.", "(a)."
_ENUMERATOR = re.compile(r"\(?(?:\d{1,3}(?:\.\d{1,3})*|[ivxlcdm]{1,6}|[IVXLCDM]{1,6}|[A-Za-z])\)?")
_DOTTED_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")
_URLISH = re.compile(r"[/@]|www\.|\.(?:com|org|net|edu|gov|io)\b", re.IGNORECASE)

# Abbreviations after which a period never ends a sentence.
_NEVER_FINAL = frozenset(
    "mr mrs ms mssrs messrs dr prof rev hon gen col capt lt sgt cpl gov sen rep pres supt mt "
    "e.g i.e cf viz vs v esp incl approx ca a.k.a".split()
)
# Abbreviations that end no sentence when a number follows ("No. 5", "Jan. 3", "pp. 12").
_BEFORE_NUMBER = frozenset(
    "no nos vol vols fig figs p pp para paras sec secs art arts ch chap eq eqs ref refs tab "
    "op ex exh sch cl n reg ver rs tel jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# Abbreviations that may end a sentence: they do only when a typical sentence opener follows.
_AMBIGUOUS = frozenset(
    "inc ltd co corp llc plc bros jr sr st ave blvd rd dept univ assn al esq gmbh ph.d l.p n.a "
    "u.s u.k u.n a.m p.m".split()
)
_SENTENCE_OPENERS = frozenset(
    "the this that these those it its he she we they i you there here in on at for if when "
    "but and however a an as after before our his her their my some all no not each such "
    "what why how who where so then also although while because since during following "
    "under upon any every both one thus therefore moreover furthermore finally first second "
    "in addition now today yet".split()
)
_CONTINUING_NEXT = ",;:)]}%"
_CONTINUING_LINE_END = ",，、-‐–(（"
# A line that ends in one of these words stops mid-sentence ("Get funded by\nY Combinator").
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at by for from with into onto upon about as than that which who "
    "whom whose and or but nor because although though while if whether since until unless "
    "my your his her its our their this these those is are was were be been has have had "
    "will would shall should can could may might must very such every each".split()
)
_LAST_WORD = re.compile(r"[A-Za-z]+\Z")
_WRAPPED_LINE_END = ".!?;:…" + _CLOSERS


def split_sentences(text: str, *, boundaries: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """Split a text into sentences with exact character offsets.

    Args:
        text: the document text, exactly as given (never normalised).
        boundaries: offsets where a sentence must start (the line starts of
            the document's structural units); ``None`` finds them with
            :func:`structure_boundaries`.

    Returns:
        ``[(start, end), ...]`` code-point offsets of each sentence, in order and
        non-overlapping. Each span is stripped (``text[start]`` and
        ``text[end - 1]`` are not whitespace) and every non-whitespace character
        of ``text`` lies in exactly one span. Empty or whitespace-only text gives
        ``[]``.
    """
    if not text or text.isspace():
        return []
    cuts = _punctuation_cuts(text)
    cuts.extend(_newline_cuts(text))
    cuts.extend(structure_boundaries(text) if boundaries is None else boundaries)
    cuts.sort()
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in cuts:
        if cut > start:
            _append_stripped(text, start, cut, spans)
            start = cut
    _append_stripped(text, start, len(text), spans)
    return spans


def structure_boundaries(text: str) -> list[int]:
    """Line starts of the structural units of ``text`` (dialogue turns, cues, headings and
    session headers that open their line), where sentences must start."""
    found = extract_structure(text)
    starts = {t.start for t in found.turns}
    starts.update(h.start for h in found.headings if _at_line_start(text, h.start))
    return sorted(s for s in starts if s > 0)


def paragraph_numbers(text: str, spans: Sequence[tuple[int, int]]) -> list[int]:
    """Number the paragraph of each sentence.

    Args:
        text: the text the spans index into.
        spans: sentence spans in document order (from :func:`split_sentences`
            or :func:`split_long_sentences`).

    Returns:
        One 0-based paragraph index per span. The index grows by one whenever
        the gap between two consecutive spans holds a blank line (``\\n\\s*\\n``).
    """
    numbers: list[int] = []
    paragraph = 0
    previous_end: int | None = None
    for start, end in spans:
        if (
            previous_end is not None
            and start > previous_end
            and _PARAGRAPH_BREAK.search(text, previous_end, start)
        ):
            paragraph += 1
        numbers.append(paragraph)
        previous_end = end
    return numbers


def split_long_sentences(
    spans: Sequence[tuple[int, int]],
    token_offsets: Sequence[tuple[int, int]],
    max_tokens: int,
    text: str,
) -> list[tuple[int, int]]:
    """Cut every sentence with more than ``max_tokens`` tokens into pieces.

    A piece ends at a token boundary, as late as possible within the last quarter
    of the allowed tokens, preferring a boundary after punctuation, then after
    whitespace, then any boundary. Pieces keep the invariants of
    :func:`split_sentences` (ordered, disjoint, stripped, covering).

    Args:
        spans: sentence spans of ``text``, in order.
        token_offsets: ``(start, end)`` character offsets of every token of the
            whole ``text`` (as a fast Hugging Face tokenizer reports them, without
            special tokens), sorted by start.
        max_tokens: most tokens a piece may hold; at least 1.
        text: the text the offsets index into.

    Returns:
        The spans with long sentences replaced by their pieces. A token that
        straddles a span boundary counts towards both spans. A piece can only
        exceed the limit when one character alone carries more than
        ``max_tokens`` tokens (an emoji is up to four byte-level tokens), which
        no real limit allows.

    Raises:
        ConfigError: if ``max_tokens`` is below 1.
    """
    if max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1, got {max_tokens}; pass a positive limit")
    starts = [int(s) for s, _ in token_offsets]
    # A zero-width token still occupies its position, so that it is counted somewhere.
    ends = [max(int(e), int(s) + 1) for s, e in token_offsets]
    out: list[tuple[int, int]] = []
    for span_start, span_end in spans:
        first = bisect_right(starts, span_start) - 1
        while first >= 0 and ends[first] > span_start:
            first -= 1
        first += 1
        stop = bisect_left(starts, span_end)
        if stop - first <= max_tokens:
            out.append((int(span_start), int(span_end)))
            continue
        _cut_by_tokens(text, span_start, span_end, starts, ends, first, stop, max_tokens, out)
    return out


def _cut_by_tokens(
    text: str,
    span_start: int,
    span_end: int,
    starts: list[int],
    ends: list[int],
    first: int,
    stop: int,
    max_tokens: int,
    out: list[tuple[int, int]],
) -> None:
    """Append the pieces of one over-long span to ``out``."""
    position = span_start
    token = first  # first token overlapping the current piece
    while stop - token > max_tokens:
        lowest = token + max(1, (max_tokens * 3) // 4)
        best_index = -1
        best_class = -1
        for index in range(token + max_tokens, lowest - 1, -1):
            cut = starts[index]
            if cut <= position:
                break
            if ends[index - 1] > cut:
                continue  # the previous token straddles this position
            kind = _boundary_class(text, cut)
            if kind > best_class:
                best_index, best_class = index, kind
                if kind == 2:
                    break
        if best_index < 0:
            # No clean boundary late in the window: take the latest position that moves forward.
            for index in range(token + max_tokens, token, -1):
                if starts[index] > position:
                    best_index = index
                    break
        if best_index < 0:
            break  # a single character carries too many tokens; nothing can be cut
        cut = starts[best_index]
        _append_stripped(text, position, cut, out)
        position = cut
        token = best_index
        while token > first and ends[token - 1] > position:
            token -= 1
    _append_stripped(text, position, span_end, out)


def _boundary_class(text: str, cut: int) -> int:
    """Rank a cut position: 2 after punctuation, 1 after whitespace, 0 otherwise."""
    before = text[cut - 1] if cut > 0 else " "
    if before.isspace():
        probe = cut - 1
        while probe > 0 and text[probe - 1].isspace() and cut - probe < 8:
            probe -= 1
        if probe > 0 and text[probe - 1] in ",;:，、；：.!?。！？)）]】」』”":
            return 2
        return 1
    if before in ",;:，、；：.!?。！？…)）]】」』”":
        return 2
    return 0


def _append_stripped(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    """Append ``[start, end)`` without surrounding whitespace, unless nothing is left."""
    match = _NONSPACE.search(text, start, end)
    if match is None:
        return
    start = match.start()
    end = start + len(text[start:end].rstrip())
    out.append((start, end))


def _punctuation_cuts(text: str) -> list[int]:
    """Positions just after sentence-final punctuation (and its closing quotes)."""
    cuts: list[int] = []
    n = len(text)
    for match in _TERMINAL_RUN.finditer(text):
        run_end = match.end()
        marks = match.group("marks")
        if not marks.isascii() and any(c in _CJK_TERMINATORS for c in marks):
            cuts.append(run_end)
            continue
        if run_end >= n:
            continue
        following = text[run_end]
        if not following.isspace():
            if _ends_without_space(text, match.start(), marks, run_end):
                cuts.append(run_end)
            continue
        nxt = _NONSPACE.search(text, run_end)
        if nxt is None:
            continue
        if _ends_before_space(text, match.start(), marks, nxt.start()):
            cuts.append(run_end)
    cuts.extend(match.end() for match in _SEMICOLON_ITEM.finditer(text))
    return cuts


def _ends_without_space(text: str, run_start: int, marks: str, run_end: int) -> bool:
    """Whether punctuation directly followed by a character ends a sentence."""
    following = text[run_end]
    if _CJK.match(following) or following in "“‘「『（《【":
        # ASCII punctuation before Chinese: "好!然后", "the end.然后" (but not "1.中国").
        if marks[0] != "." or len(marks) > 1:
            return True
        word = _word_before(text, run_start)
        return not (_is_abbreviation(word) or _ENUMERATOR.fullmatch(word))
    # "agenda.To put": a missing space between two sentences, but not "e.g.The", "U.S.A".
    if not (following.isupper() and following.isascii()):
        return False
    if run_end + 1 >= len(text) or not text[run_end + 1].isalpha():
        return False
    if run_start < 2 or not (text[run_start - 1].islower() and text[run_start - 2].islower()):
        return False
    token_start = run_start - len(_word_before(text, run_start))
    token_end = run_end
    while token_end < len(text) and not text[token_end].isspace() and token_end - run_end < 40:
        token_end += 1
    return _URLISH.search(text, token_start, token_end) is None


def _ends_before_space(text: str, run_start: int, marks: str, next_index: int) -> bool:
    """Whether punctuation followed by whitespace ends a sentence."""
    nxt = text[next_index]
    if nxt in ".!?…⋯" or nxt in _CONTINUING_NEXT:
        return False  # ". . ." or a stray mark: the sentence goes on
    letter_index = next_index
    while letter_index < len(text) and text[letter_index] in _OPENERS and letter_index - next_index < 3:
        letter_index += 1
    if letter_index < len(text) and text[letter_index].islower():
        return False
    if marks[0] != ".":
        return True  # "!", "?", "…" before a capital, digit or Chinese
    if len(marks) > 1:
        return True  # an ellipsis "..." (or ".!") before a capital
    word = _word_before(text, run_start)
    if not word:
        return True
    if _ENUMERATOR.fullmatch(word) and _at_line_start(text, run_start - len(word)):
        return False  # "1. Introduction", "3.3.1. License"
    key = word.lstrip(_OPENERS).lower()
    if key in _NEVER_FINAL:
        return False
    if key in _BEFORE_NUMBER and nxt.isdigit():
        return False
    if key in _AMBIGUOUS or _DOTTED_ACRONYM.fullmatch(key) or (len(key) == 1 and key.isalpha()):
        return _next_word(text, letter_index).lower() in _SENTENCE_OPENERS
    return True


def _word_before(text: str, index: int) -> str:
    """The non-whitespace run that ends at ``index`` (at most 40 characters)."""
    match = _WORD_BEFORE.search(text, max(0, index - 40), index)
    return match.group() if match else ""


def _next_word(text: str, index: int) -> str:
    """The letters starting at ``index``."""
    end = index
    while end < len(text) and text[end].isalpha() and end - index < 20:
        end += 1
    return text[index:end]


def _is_abbreviation(word: str) -> bool:
    key = word.lstrip(_OPENERS).lower()
    return key in _NEVER_FINAL or key in _AMBIGUOUS or _DOTTED_ACRONYM.fullmatch(key) is not None


def _at_line_start(text: str, index: int) -> bool:
    """Whether only whitespace precedes ``index`` on its line."""
    probe = index - 1
    while probe >= 0 and text[probe] != "\n" and text[probe].isspace():
        probe -= 1
    return probe < 0 or text[probe] == "\n"


def _newline_cuts(text: str) -> list[int]:
    """Positions where a line break ends a sentence (blank lines, lines of their own)."""
    cuts: list[int] = []
    wrap_width: int | None = None
    width_known = False
    for match in _LINE_BREAKS.finditer(text):
        start = match.start()
        while start > 0 and text[start - 1].isspace():
            start -= 1
        nxt = _NONSPACE.search(text, match.end())
        if start == 0 or nxt is None:
            continue
        if match.end() - match.start() > 1:
            cuts.append(start)  # a blank line
            continue
        following = nxt.start()
        if _UNIT_START.match(text, following):
            cuts.append(start)
            continue
        last_char = text[start - 1]
        if last_char in _CONTINUING_LINE_END:
            continue
        first_char = text[following]
        if first_char.islower():
            continue  # hard-wrapped prose: "... if you\n don't bother"
        line_start = text.rfind("\n", 0, start) + 1
        if _ends_in_function_word(text, line_start, start):
            continue
        if not width_known:
            wrap_width, width_known = _wrap_width(text), True
        if wrap_width is not None and _runs_on(text, line_start, start, following, wrap_width):
            continue
        cuts.append(start)
    return cuts


def _runs_on(text: str, line_start: int, end: int, following: int, wrap_width: int) -> bool:
    """Whether a line of a hard-wrapped text continues on the next line."""
    last_char = text[end - 1]
    first_char = text[following]
    if first_char.isdigit() and last_char.islower():
        return True  # "will make us\n3.6 percent more"
    if not (last_char.isalnum() or last_char in _WRAPPED_LINE_END):
        return False
    if not (first_char.isalnum() or first_char in _OPENERS):
        return False
    # A full line runs on; a sentence end inside it is left to the punctuation rules.
    return end - line_start >= 0.6 * wrap_width


def _ends_in_function_word(text: str, line_start: int, end: int) -> bool:
    """Whether a line ends in a word no sentence ends with ("the", "of", "by")."""
    match = _LAST_WORD.search(text, max(line_start, end - 12), end)
    if match is None:
        return False
    word = match.group()
    if word.islower():
        return word in _FUNCTION_WORDS
    # A capitalised function word ends mid-sentence only when it is the whole line ("In").
    alone = _NONSPACE.search(text, line_start, match.start()) is None
    return alone and word.lower() in _FUNCTION_WORDS


def _wrap_width(text: str) -> int | None:
    """The line width of a hard-wrapped text, or ``None`` when lines are not wrapped."""
    lengths = sorted(len(line) for line in text.split("\n") if line and not line.isspace())
    if len(lengths) < 10:
        return None
    width = lengths[int(0.8 * (len(lengths) - 1))]
    if width > 130:
        return None
    near_full = len(lengths) - bisect_left(lengths, int(0.7 * width))
    return width if near_full >= 0.5 * len(lengths) else None
