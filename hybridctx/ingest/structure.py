"""Where each sentence stands: title, headings, sessions, speakers, dates and pages.

Why: many questions name what only the structure of a document holds — the
date in a session header several turns above the answer, the clause heading
``12. GOVERNING LAW``, "chapter 3". A landmark read inside a 256-token window
cannot see a header 2,000 tokens up. This pass finds that structure once, at
ingestion, with exact character offsets and no model, so every landmark can
carry its header path (``title › section › subsection``, or
``session › speaker``).

What is read, line by line (the text is never altered):

* headings: Markdown ``#`` and underlined (setext) headings, HTML ``<h1>``-``<h6>``
  (inline in the text, or as recorded by the HTML loader in
  ``metadata["headings"]``), ``CHAPTER X`` / ``Part II`` / ``Book 3``, ``ARTICLE IV``,
  ``Section 12.1`` / ``§ 4``, numbered sections ``4.2 Payment`` and
  ``12. GOVERNING LAW. This Agreement…`` (the capitalised label only), Chinese
  ``第三回`` / ``第二章`` / ``一、总则``, ALL-CAPS lines and short title lines of
  their own ("Introduction" above a paragraph);
* sessions: a short line that names a date ("Session 3 (8 May, 2023)",
  "Meeting notes — 2024-03-04", "2023年5月8日") is a session header and gives its
  date to the turns below it;
* dialogue turns: ``Name: text`` and ``名字：text`` lines whose speaker recurs, chat
  exports (``[2023-05-08 14:32] Name: text``, ``5/8/23, 2:32 PM - Name: text``,
  ``[D1:3] Name: text``), SRT and WebVTT cues (the cue's start time, the speaker
  from ``<v Name>`` or a ``Name:`` inside the cue);
* pages: ``metadata["page_starts"]`` (the PDF loader's page offsets).

Every span is exact: ``text[h.start:h.end]`` is the heading's label,
``text[t.speaker_start:t.speaker_end]`` the speaker's name.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hybridctx.ingest.dates import find_dates

__all__ = ["DocumentStructure", "Heading", "Page", "Turn", "extract_structure", "matches_hints",
           "structural_units", "structure_from_json"]

SEPARATOR = " › "
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Heading:
    """A heading: its label's span, its depth and what kind of line it was.

    Attributes:
        start: offset of the label's first character.
        end: offset one past its last character.
        level: 0 for the document title, 1 for top-level sections, deeper is larger.
        kind: ``title``, ``markdown``, ``html``, ``chapter``, ``article``,
            ``section``, ``numbered``, ``zh``, ``caps``, ``line`` or ``session``.
        label: ``text[start:end]``.
        date: ISO date the heading names (session headers), else ``None``.
    """

    start: int
    end: int
    level: int
    kind: str
    label: str
    date: str | None = None


@dataclass(frozen=True)
class Turn:
    """One dialogue turn (a chat message, a transcript line, a subtitle cue).

    Attributes:
        start: offset where the turn's line starts (its stamp or speaker).
        end: offset one past its last character (before the next turn or heading).
        speaker: the speaker's name (``text[speaker_start:speaker_end]``), or ``""``.
        speaker_start, speaker_end: its span (equal when there is no speaker).
        date: ISO date of the turn (its own stamp, else its session's), or ``None``.
        stamp: the turn's time stamp as written (``14:32``, ``00:01:02,500``), or ``""``.
    """

    start: int
    end: int
    speaker: str
    speaker_start: int
    speaker_end: int
    date: str | None = None
    stamp: str = ""


@dataclass(frozen=True)
class Page:
    """A page of a paged document (1-based ``number``, ``[start, end)`` of the text)."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class DocumentStructure:
    """The structure of one document.

    Attributes:
        title: the document's title (given, or its first line), or ``None``.
        headings: headings in document order (the title's own line included, level 0).
        turns: dialogue turns in document order.
        pages: pages, when the loader knew them.
    """

    title: str | None
    headings: tuple[Heading, ...] = ()
    turns: tuple[Turn, ...] = ()
    pages: tuple[Page, ...] = ()
    _chains: tuple[tuple[int, ...], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        stack: list[int] = []
        chains = []
        for i, heading in enumerate(self.headings):
            while stack and self.headings[stack[-1]].level >= heading.level:
                stack.pop()
            stack.append(i)
            chains.append(tuple(stack))
        object.__setattr__(self, "_chains", tuple(chains))
        object.__setattr__(self, "_heading_starts", [h.start for h in self.headings])
        object.__setattr__(self, "_turn_starts", [t.start for t in self.turns])
        object.__setattr__(self, "_page_starts", [p.start for p in self.pages])

    def section_at(self, offset: int) -> tuple[Heading, ...]:
        """The headings whose sections hold ``offset``, outermost first."""
        i = bisect_right(self._heading_starts, offset) - 1  # type: ignore[attr-defined]
        return tuple(self.headings[j] for j in self._chains[i]) if i >= 0 else ()

    def turn_at(self, offset: int) -> Turn | None:
        """The dialogue turn that holds ``offset``, or ``None``."""
        i = bisect_right(self._turn_starts, offset) - 1  # type: ignore[attr-defined]
        if i >= 0 and offset < self.turns[i].end:
            return self.turns[i]
        return None

    def page_at(self, offset: int) -> int | None:
        """The 1-based page that holds ``offset``, or ``None`` (no pages known)."""
        i = bisect_right(self._page_starts, offset) - 1  # type: ignore[attr-defined]
        return self.pages[i].number if i >= 0 else None

    def path_at(self, offset: int, *, speaker: bool = True) -> tuple[str, ...]:
        """The header path of the text at ``offset``: the title, the headings above it
        (outermost first), then (unless ``speaker`` is false) the speaker of its turn."""
        chain = self.section_at(offset)
        path = [_one_line(h.label) for h in chain]
        if self.title and not (chain and (chain[0].level == 0 or path[0] == _one_line(self.title))):
            path.insert(0, _one_line(self.title))
        turn = self.turn_at(offset) if speaker else None
        if turn is not None and turn.speaker:
            path.append(turn.speaker)
        return tuple(path)

    def paths(self, starts: Sequence[int], *, speaker: bool = True) -> list[tuple[str, ...]]:
        """:meth:`path_at` of each offset (e.g. every landmark's start)."""
        return [self.path_at(int(s), speaker=speaker) for s in starts]

    def summary(self) -> dict[str, Any]:
        """Counts for listings: headings, turns, speakers, dated turns, pages."""
        speakers = sorted({t.speaker for t in self.turns if t.speaker})
        dates = sorted({t.date for t in self.turns if t.date} | {h.date for h in self.headings if h.date})
        return {"title": self.title, "headings": len(self.headings), "turns": len(self.turns),
                "speakers": speakers, "dates": [dates[0], dates[-1]] if dates else [], "pages": len(self.pages)}

    def to_json(self) -> str:
        """Compact JSON of the spans (labels are read back from the text)."""
        return json.dumps({
            "v": FORMAT_VERSION,
            "title": self.title,
            "headings": [[h.start, h.end, h.level, h.kind, h.date] for h in self.headings],
            "turns": [[t.start, t.end, t.speaker_start, t.speaker_end, t.date, t.stamp] for t in self.turns],
            "pages": [[p.number, p.start, p.end] for p in self.pages],
        }, ensure_ascii=False, separators=(",", ":"))


_UNIT_KINDS = {
    "chapter": frozenset({"chapter", "zh", "markdown", "html", "article", "numbered", "section", "caps", "line"}),
    "section": frozenset({"chapter", "zh", "markdown", "html", "article", "numbered", "section", "caps", "line"}),
    "session": frozenset({"session"}),
}


def structural_units(structure: DocumentStructure, unit: str) -> list[int]:
    """Start offsets of a document's units of one kind, in order: ``session`` (dated
    session headers), ``turn`` (dialogue turns), ``page``, or ``section`` / ``chapter``
    (headings at the shallowest level below the title; chapter headings when there
    are any). Empty when the document has none of that kind."""
    if unit == "turn":
        return [t.start for t in structure.turns]
    if unit == "page":
        return [p.start for p in structure.pages]
    kinds = _UNIT_KINDS.get(unit)
    if kinds is None:
        return []
    found = [h for h in structure.headings if h.level > 0 and h.kind in kinds]
    if unit == "chapter" and any(h.kind in ("chapter", "zh") for h in found):
        found = [h for h in found if h.kind in ("chapter", "zh")]
    if not found:
        return []
    top = min(h.level for h in found)
    return [h.start for h in found if h.level == top]


_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
_WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_ZH_NUMBERS = {c: i for i, c in enumerate("零一二三四五六七八九十")}


def _as_number(token: str) -> int | None:
    """3, III, three, 三 (and 十二) as an int; ``None`` for anything else."""
    t = token.strip().lower()
    if t.isdigit():
        return int(t)
    if t in _WORD_NUMBERS:
        return _WORD_NUMBERS[t]
    if t and all(c in _ROMAN for c in t):
        values = [_ROMAN[c] for c in t]
        return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))
    if t and all(c in _ZH_NUMBERS for c in t):
        if "十" in t:
            tens, _, ones = t.partition("十")
            return (_ZH_NUMBERS.get(tens, 1) if tens else 1) * 10 + (_ZH_NUMBERS.get(ones, 0) if ones else 0)
        return _ZH_NUMBERS[t] if len(t) == 1 else None
    return None


_LABEL_NUMBER = re.compile(r"(\d{1,3}(?:\.\d{1,3})*|\b[IVXLC]{1,6}\b|[零一二三四五六七八九十]{1,3}|\b(?:one|two|three|four|five"
                           r"|six|seven|eight|nine|ten|eleven|twelve)\b)", re.I)


def _heading_matches(heading: Heading, kind: str, number: str | None, name: str | None) -> bool:
    label = " ".join(heading.label.split())
    if name is not None:
        return name.lower() in label.lower()
    if number is None:
        return False
    found = _LABEL_NUMBER.search(label)
    if found is None:
        return False
    if "." in number or "." in found.group(1):
        return found.group(1).rstrip(".") == number.rstrip(".")
    return _as_number(found.group(1)) is not None and _as_number(found.group(1)) == _as_number(number)


def matches_hints(structure: DocumentStructure, offset: int, hints: Any) -> bool:
    """Whether the text at ``offset`` lies under everything a question names
    (:class:`hybridctx.retrieval.query_hints.QueryHints`): a date in range (its turn's date,
    else its section's), a speaker (its turn's, first names match), and a section
    (a heading above it, by number or by title)."""
    if not (hints.speakers or hints.dates or hints.sections):
        return False
    turn = structure.turn_at(offset)
    chain = structure.section_at(offset)
    if hints.speakers:
        speaker = turn.speaker.lower() if turn is not None and turn.speaker else ""
        if not speaker or not any(speaker == s.lower() or speaker.split()[0] == s.lower().split()[0]
                                  for s in hints.speakers):
            return False
    if hints.dates:
        date = turn.date if turn is not None and turn.date else next((h.date for h in reversed(chain) if h.date), None)
        if date is None or not any(_date_in(date, d.start, d.end) for d in hints.dates):
            return False
    if hints.sections:
        return any(_heading_matches(h, s.kind, s.number, s.name) for h in chain for s in hints.sections)
    return True


def _date_in(date: str, start: str | None, end: str | None) -> bool:
    """Whether ISO ``date`` lies in ``start .. end`` (ISO prefixes; ``--MM`` a month of any year)."""
    if start is not None and start.startswith("--"):
        return date[4:7] == start[1:] if end == start else date[5:7] >= start[2:] and (end is None or date[5:7] <= end[-2:])
    if start is not None and not (date >= start or date.startswith(start)):
        return False
    if end is not None and not (date <= end or date.startswith(end)):
        return False
    return True


def structure_from_json(data: str, text: str) -> DocumentStructure | None:
    """The structure stored by :meth:`DocumentStructure.to_json`, or ``None`` when
    ``data`` is not a structure of this format or does not fit ``text``."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("v") != FORMAT_VERSION:
            return None
        n = len(text)
        headings = []
        for s, e, level, kind, date in raw["headings"]:
            _check_span(s, e, n)
            headings.append(Heading(s, e, int(level), str(kind), text[s:e], date))
        turns = []
        for s, e, ss, se, date, stamp in raw["turns"]:
            _check_span(s, e, n)
            _check_span(ss, se, n)
            turns.append(Turn(s, e, text[ss:se], ss, se, date, str(stamp)))
        pages = []
        for number, s, e in raw["pages"]:
            _check_span(s, e, n)
            pages.append(Page(int(number), s, e))
        title = raw["title"]
        return DocumentStructure(title if isinstance(title, str) else None, tuple(headings), tuple(turns), tuple(pages))
    except (ValueError, TypeError, KeyError):
        return None


def _check_span(start: Any, end: Any, n: int) -> None:
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= n):
        raise ValueError(f"span {start!r}..{end!r} outside a text of {n} characters")


def _one_line(label: str) -> str:
    return " ".join(label.split())


# --------------------------------------------------------------------------- headings

_MD = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+(?P<label>[^\n]*?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"[ \t]{0,3}(=+|-{3,})[ \t]*$")
_HTML_H = re.compile(r"<h([1-6])\b[^>\n]{0,200}>(?P<label>.{1,300}?)</h\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>\n]{1,200}>")
_CHAPTER = re.compile(
    r"[ \t]*(?P<label>(?P<word>CHAPTER|Chapter|PART|Part|BOOK|Book|VOLUME|Volume)[ \t]+"
    r"(?:[IVXLCDM]+|\d{1,3}|One|Two|Three|Four|Five|Six|Seven|Eight|Nine|Ten|ONE|TWO|THREE|FOUR|FIVE|SIX"
    r"|SEVEN|EIGHT|NINE|TEN)\b[^\n]{0,80}?)[ \t]*$")
_ARTICLE = re.compile(r"[ \t]*(?P<label>(?:ARTICLE|Article)[ \t]+(?:[IVXLCDM]+|\d{1,3})\b[^\n]{0,80}?)[ \t]*$")
_SECTION = re.compile(r"[ \t]*(?P<label>(?:SECTION|Section|§)[ \t]*(?P<num>\d{1,3}(?:\.\d{1,3})*)\b[^\n]{0,80}?)[ \t]*$")
# "4.2 Payment terms", "3. DEFINITIONS" alone on a line.
_NUMBERED_LINE = re.compile(
    r"[ \t]*(?P<label>(?P<num>\d{1,3}(?:\.\d{1,3})*)(?:\.|(?=[ \t]))[ \t]+[A-Z][^\n]{0,78}?)[ \t]*$")
# "12. GOVERNING LAW. This Agreement shall ...": the capitalised label, then the clause.
_NUMBERED_INLINE = re.compile(
    r"[ \t]*(?P<label>(?P<num>\d{1,3}(?:\.\d{1,3})*)\.?[ \t]+(?P<caps>[A-Z][^.\n:;]{1,80}?))[.:][ \t]+[A-Z\"“(]")
_ZH_CHAPTER = re.compile(
    r"[ \t\u3000]*(?P<label>第[一二三四五六七八九十百千零〇两\d]{1,7}(?P<unit>[卷部篇章回节節条條])"
    r"[^\n。！？]{0,40}?)[ \t\u3000]*$")
_ZH_NUMBERED = re.compile(r"[ \t\u3000]*(?P<label>[一二三四五六七八九十]{1,3}、[^\n。！？，]{1,24})[ \t\u3000]*$")
_ZH_LEVELS = {"卷": 1, "部": 1, "篇": 1, "章": 2, "回": 2, "节": 3, "節": 3, "条": 4, "條": 4}
_TOC_LEADER = re.compile(r"\.{4,}|(?:\. ){3,}|…{2,}")
_SESSION_WORDS = re.compile(
    r"\s*(?:#+\s*)?(?:session|meeting|call|interview|transcript|day|date|entry|chat|conversation|episode"
    r"|会议|会话|对话|日期|第[一二三四五六七八九十\d]{1,4}次)\b", re.I)

# --------------------------------------------------------------------------- turns

# An optional stamp ([...] or "5/8/23, 2:32 PM - "), then a speaker and a colon.
_TURN = re.compile(
    r"[ \t]*(?:\[(?P<stamp>[^\]\n]{1,40})\][ \t]*|(?P<stamp2>\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4},?[ \t]+\d{1,2}:\d{2}"
    r"(?::\d{2})?(?:[ \t]?[APap]\.?[Mm]\.?)?)[ \t]+[-–][ \t]+)?"
    r"(?P<speaker>[A-Z][\w.'’-]*(?:[ \t][A-Z][\w.'’-]*){0,3}|[\u3400-\u9fff·]{1,8})[ \t]*(?:[:：])(?:[ \t\u3000]+|(?=[^\s\d]))"
    r"(?=\S)")
_NOT_SPEAKERS = frozenset(
    "note notes nb warning caution example examples source sources date time subject from to re cc bcc title "
    "summary tip tips step question answer definition definitions section article chapter part figure table "
    "abstract keywords key result results background conclusion objective method methods update edit "
    "p s ps address phone email tel fax url link http https www location attendees agenda re fw fwd "
    "注意 注 备注 说明 例如 例 答案 问题 时间 地点 日期 主题 摘要 关键词 结论 目的 方法 结果 来源 电话 地址".split()
)
_CUE_TIME = re.compile(
    r"(?P<start>(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3})[ \t]*-->[ \t]*(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3}[^\n]*")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?[ \t]+(?P<speaker>[^>\n]{1,40})>")
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[APap]\.?[Mm]\.?)?")


@dataclass
class _Line:
    start: int
    end: int  # before the newline
    text: str


def extract_structure(text: str, *, title: str | None = None,
                      metadata: Mapping[str, Any] | None = None) -> DocumentStructure:
    """Find the structure of one document.

    Args:
        text: the document text, exactly as stored.
        title: the document's given title (e.g. an HTML ``<title>``); when absent,
            a short first line that reads as a title is taken.
        metadata: the document's metadata; ``headings`` (``[[start, end, level], ...]``)
            and ``page_starts`` (offsets where pages begin) are read when present.
    """
    metadata = metadata or {}
    lines = _lines(text)
    cues = _cue_turns(text, lines)
    turns, turn_lines = (cues, set()) if cues else _dialogue_turns(text, lines)
    headings = _headings(text, lines, turn_lines, metadata)
    headings = _date_sessions(text, lines, turn_lines, headings)
    headings.sort(key=lambda h: (h.start, h.level))
    headings = _dedupe(headings)
    given = title.strip() if isinstance(title, str) and title.strip() else None
    headings, found_title = _title(text, lines, headings, turn_lines, given)
    turns = _close_turns(text, turns, headings)
    pages = _pages(text, metadata)
    return DocumentStructure(given or found_title, tuple(headings), tuple(turns), tuple(pages))


def _lines(text: str) -> list[_Line]:
    out = []
    start = 0
    for piece in text.split("\n"):
        out.append(_Line(start, start + len(piece), piece))
        start += len(piece) + 1
    return out


def _heading(line: _Line, match: re.Match[str], level: int, kind: str, group: str = "label") -> Heading:
    s, e = line.start + match.start(group), line.start + match.end(group)
    return Heading(s, e, level, kind, line.text[match.start(group):match.end(group)])


def _headings(text: str, lines: list[_Line], turn_lines: set[int], metadata: Mapping[str, Any]) -> list[Heading]:
    found: list[Heading] = []
    has_articles = any(_ARTICLE.match(line.text) for line in lines if len(line.text) < 120)
    for i, line in enumerate(lines):
        raw = line.text
        stripped = raw.strip()
        if not stripped or i in turn_lines:
            continue
        if len(stripped) > 200:  # a paragraph: only an inline clause heading can open it
            if (m := _NUMBERED_INLINE.match(raw)) and _inline_label(m.group("caps")):
                found.append(_heading(line, m, m.group("num").count(".") + 1 + has_articles, "numbered"))
            continue
        if m := _MD.match(raw):
            if m.group("label"):
                found.append(_heading(line, m, len(m.group(1)), "markdown"))
            continue
        nxt = lines[i + 1].text if i + 1 < len(lines) else ""
        if _SETEXT.match(nxt) and len(stripped) <= 120 and not _SETEXT.match(raw):
            s = line.start + (len(raw) - len(raw.lstrip()))
            found.append(Heading(s, s + len(stripped), 1 if nxt.strip()[0] == "=" else 2, "markdown", stripped))
            continue
        if _TOC_LEADER.search(raw):
            continue  # a table-of-contents entry, not the heading itself
        if m := _CHAPTER.match(raw):
            found.append(_heading(line, m, 1 if m.group("word").lower() in ("part", "book", "volume") else 2, "chapter"))
            continue
        if m := _ARTICLE.match(raw):
            found.append(_heading(line, m, 1, "article"))
            continue
        if m := _SECTION.match(raw):
            found.append(_heading(line, m, m.group("num").count(".") + 1 + has_articles, "section"))
            continue
        if m := _ZH_CHAPTER.match(raw):
            found.append(_heading(line, m, _ZH_LEVELS[m.group("unit")], "zh"))
            continue
        if m := _ZH_NUMBERED.match(raw):
            found.append(_heading(line, m, 2, "zh"))
            continue
        if (m := _NUMBERED_LINE.match(raw)) and _reads_as_label(m.group("label")[len(m.group("num")):]):
            found.append(_heading(line, m, m.group("num").count(".") + 1 + has_articles, "numbered"))
            continue
        if m := _NUMBERED_INLINE.match(raw):
            if _inline_label(m.group("caps")):
                found.append(_heading(line, m, m.group("num").count(".") + 1 + has_articles, "numbered"))
                continue
        if _is_caps_line(stripped):
            s = line.start + (len(raw) - len(raw.lstrip()))
            found.append(Heading(s, s + len(stripped), 1, "caps", stripped))
            continue
        if _is_title_line(stripped, lines, i):
            s = line.start + (len(raw) - len(raw.lstrip()))
            found.append(Heading(s, s + len(stripped), 1, "line", stripped))
    for m in _HTML_H.finditer(text):
        label_start, label_end = m.span("label")
        inner = text[label_start:label_end]
        if _TAG.search(inner) or not inner.strip():
            continue
        lead = len(inner) - len(inner.lstrip())
        label = inner.strip()
        found.append(Heading(label_start + lead, label_start + lead + len(label), int(m.group(1)), "html", label))
    for item in metadata.get("headings") or ():
        try:
            s, e, level = (int(v) for v in item)
        except (TypeError, ValueError):
            continue
        if 0 <= s < e <= len(text) and text[s:e].strip():
            s += len(text[s:e]) - len(text[s:e].lstrip())
            e = s + len(text[s:e].strip())
            found.append(Heading(s, e, max(1, min(6, level)), "html", text[s:e]))
    return found


def _reads_as_label(rest: str) -> bool:
    """Whether what follows a section number reads as a heading, not a list item or a sentence."""
    rest = rest.strip(" .\t")
    words = rest.split()
    if not words or len(words) > 12 or rest[-1] in ",;:!?)" and not rest.isupper() or ". " in rest:
        return False
    # A heading capitalises its words or is all capitals: "Payment Terms", "DEFINITIONS".
    content = [w for w in words if w.isalpha() and len(w) > 3]
    return rest.isupper() or all(w[0].isupper() for w in content)


def _inline_label(caps: str) -> bool:
    """Whether the words between a clause number and its first period are a clause title."""
    return sum(c.isalpha() for c in caps) >= 3 and len(caps.split()) <= 8 and _reads_as_label(caps)


def _is_caps_line(stripped: str) -> bool:
    letters = [c for c in stripped if c.isalpha()]
    if len(letters) < 4 or any(c.islower() for c in letters) or not all(c.isascii() for c in letters):
        return False
    words = stripped.split()
    return len(words) <= 14 and len(stripped) <= 100 and stripped[-1] not in ",;" and not stripped.endswith(":")


def _is_title_line(stripped: str, lines: list[_Line], i: int) -> bool:
    """A short capitalised line of its own above a longer paragraph ("Introduction")."""
    words = stripped.split()
    if len(words) > 8 or len(stripped) > 60 or not stripped[0].isupper() or stripped[-1] in ".,;:!?\"”)":
        return False
    if not all(w[0].isupper() or not w[0].isalpha() or len(w) <= 4 for w in words):
        return False
    before = lines[i - 1].text.strip() if i > 0 else ""
    if before and before[-1] not in ".!?:\"”)":
        return False
    j = i + 1
    while j < len(lines) and not lines[j].text.strip():
        j += 1
    return j < len(lines) and len(lines[j].text.strip()) >= max(60, 2 * len(stripped))


def _date_sessions(text: str, lines: list[_Line], turn_lines: set[int], headings: list[Heading]) -> list[Heading]:
    """Give headings their dates, and make short dated lines of their own session headers."""
    by_start = {h.start: h for h in headings}
    out = []
    for h in headings:
        dates = find_dates(h.label)
        out.append(Heading(h.start, h.end, h.level, "session" if dates and h.kind == "line" else h.kind, h.label,
                           dates[0].iso if dates else None) if dates else h)
    starts = {h.start for h in out}
    for i, line in enumerate(lines):
        stripped = line.text.strip()
        if i in turn_lines or not stripped or len(stripped) > 80:
            continue
        lead = len(line.text) - len(line.text.lstrip())
        s = line.start + lead
        dates = find_dates(stripped)
        if not dates or s in starts or any(h.start <= s < h.end for h in by_start.values()):
            continue
        covered = sum(d.end - d.start for d in dates)
        dense = covered >= 0.5 * len(stripped.replace(" ", ""))
        j = i + 1
        while j < len(lines) and not lines[j].text.strip():
            j += 1
        if _SESSION_WORDS.match(stripped) or dense or j in turn_lines:
            out.append(Heading(s, s + len(stripped), 1, "session", stripped, dates[0].iso))
    return out


def _dedupe(headings: list[Heading]) -> list[Heading]:
    out: list[Heading] = []
    for h in headings:
        if out and h.start < out[-1].end:
            continue  # the same line read twice (an inline <h1> inside a Markdown line)
        out.append(h)
    return out


_TITLE_KINDS = frozenset({"markdown", "html", "caps", "chapter"})


def _title(text: str, lines: list[_Line], headings: list[Heading], turn_lines: set[int],
           given: str | None) -> tuple[list[Heading], str | None]:
    """The first heading near the top becomes the title (level 0), else a short first line;
    with a given title, only a first line that repeats it."""
    first = next((i for i, line in enumerate(lines) if line.text.strip()), None)
    if first is None or first in turn_lines:
        return headings, None
    if given is not None and _one_line(lines[first].text) != _one_line(given):
        return headings, None
    line = lines[first]
    if headings and headings[0].start < line.end + 1 and headings[0].kind in _TITLE_KINDS and headings[0].level <= 1:
        h = headings[0]
        titled = Heading(h.start, h.end, 0, "title", h.label, h.date)
        return [titled] + headings[1:], h.label
    stripped = line.text.strip()
    if headings and headings[0].start < line.end + 1:
        return headings, None
    if len(stripped.split()) <= 15 and len(stripped) <= 120 and stripped[-1] not in ".,;:!?" and stripped[0].isupper():
        s = line.start + (len(line.text) - len(line.text.lstrip()))
        return [Heading(s, s + len(stripped), 0, "title", stripped)] + headings, stripped
    return headings, None


# --------------------------------------------------------------------------- turns


def _dialogue_turns(text: str, lines: list[_Line]) -> tuple[list[Turn], set[int]]:
    candidates = []
    counts: dict[str, int] = {}
    for i, line in enumerate(lines):
        m = _TURN.match(line.text)
        if m is None:
            continue
        speaker = m.group("speaker")
        if speaker.lower() in _NOT_SPEAKERS or speaker.rstrip(".").lower() in _NOT_SPEAKERS:
            continue
        candidates.append((i, m))
        counts[speaker] = counts.get(speaker, 0) + 1
    recurring = {s for s, c in counts.items() if c >= 2}
    stamped = sum(1 for _, m in candidates if m.group("stamp") or m.group("stamp2"))
    if (len(candidates) < 3 or not recurring) and stamped < 2:
        return [], set()
    candidate_lines = {i for i, _ in candidates}
    turns, turn_lines = [], set()
    for i, m in candidates:
        speaker = m.group("speaker")
        stamp = m.group("stamp") or m.group("stamp2") or ""
        # A one-off speaker counts inside an exchange (a turn line right before or after it).
        if speaker not in recurring and not stamp and not (i - 1 in candidate_lines or i + 1 in candidate_lines):
            continue
        line = lines[i]
        ss, se = line.start + m.start("speaker"), line.start + m.end("speaker")
        date = None
        if stamp:
            dates = find_dates(stamp)
            date = dates[0].iso if dates else None
            clock = _CLOCK.search(stamp)
            stamp = clock.group() if clock and date else stamp
        turns.append(Turn(line.start + (len(line.text) - len(line.text.lstrip())), line.end, speaker, ss, se, date, stamp))
        turn_lines.add(i)
    return turns, turn_lines


def _cue_turns(text: str, lines: list[_Line]) -> list[Turn]:
    """SRT / WebVTT cues: each cue (its number, timing line and text) is one turn."""
    timings = [i for i, line in enumerate(lines) if _CUE_TIME.match(line.text.strip())]
    if len(timings) < 2:
        return []
    turns = []
    for i in timings:
        start_line = i - 1 if i > 0 and lines[i - 1].text.strip().isdigit() else i
        timing_set = set(timings)
        j = i + 1
        while j < len(lines) and lines[j].text.strip() and j not in timing_set and not (
                j + 1 in timing_set and lines[j].text.strip().isdigit()):
            j += 1
        body = lines[i + 1:j]
        end = body[-1].end if body else lines[i].end
        start = lines[start_line].start + (len(lines[start_line].text) - len(lines[start_line].text.lstrip()))
        stamp = _CUE_TIME.match(lines[i].text.strip()).group("start")  # type: ignore[union-attr]
        speaker, ss = "", end
        for line in body:
            if v := _VOICE.search(line.text):
                speaker, ss = v.group("speaker").strip(), line.start + v.start("speaker")
                break
            if (t := _TURN.match(line.text.lstrip("- "))) and t.group("speaker").lower() not in _NOT_SPEAKERS:
                offset = len(line.text) - len(line.text.lstrip("- "))
                speaker, ss = t.group("speaker"), line.start + offset + t.start("speaker")
                break
        turns.append(Turn(start, end, speaker, ss if speaker else end, ss + len(speaker) if speaker else end, None, stamp))
    return turns


def _close_turns(text: str, turns: list[Turn], headings: list[Heading]) -> list[Turn]:
    """Extend each turn to the next turn or heading, and give undated turns their session's date."""
    heading_starts = [h.start for h in headings]
    out = []
    for k, t in enumerate(turns):
        limit = turns[k + 1].start if k + 1 < len(turns) else len(text)
        h = bisect_right(heading_starts, t.start)
        if h < len(headings):
            limit = min(limit, headings[h].start)
        end = max(t.end, t.start + len(text[t.start:limit].rstrip()))
        date = t.date
        if date is None:
            for j in range(h - 1, -1, -1):
                if headings[j].date:
                    date = headings[j].date
                    break
        out.append(Turn(t.start, end, t.speaker, t.speaker_start, t.speaker_end, date, t.stamp))
    return out


def _pages(text: str, metadata: Mapping[str, Any]) -> list[Page]:
    raw = metadata.get("page_starts")
    if not isinstance(raw, (list, tuple)):
        return []
    starts = [s for s in raw if isinstance(s, int) and 0 <= s <= len(text)]
    if starts != sorted(starts):
        return []
    ends = starts[1:] + [len(text)]
    return [Page(i + 1, s, e) for i, (s, e) in enumerate(zip(starts, ends))]
