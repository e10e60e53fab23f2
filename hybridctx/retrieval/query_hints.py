"""What a question says about *where*, *when* and *how much*: one place for query hints.

Why: some questions name a position, a date, a section or a speaker rather
than a content — "What is the second topic we discussed?", "What did Calvin
open in May 2023?", "In chapter 3, who …", "Highlight the parts related to
'Governing Law'" — and some ask about the whole corpus ("summarise", 总结). Neither
dense nor BM25 search reads that; the document's structure
(:mod:`hybridctx.ingest.structure`) holds it. This module owns every such reading of a
question, in English and Chinese, so retrieval and the router ask one place and
a new phrasing is taught once. Rules are about language, never about one
dataset's template.

Hints (each ``None`` or empty when the question does not give it):

* ``position``: an end of the document (``start``/``end``) and, when an ordinal
  qualifies a discourse unit, which one (``ordinal`` 2 = the second, -1 = the
  last) and of what (``unit``: ``section``, ``chapter``, ``session``, ``turn``,
  ``topic``, ...). "When did she first go to Paris?" has no position.
* ``dates``: the dates or the date range the question names ("in May 2023",
  "between March and June 2021", "since 2019", 2023年5月).
* ``sections``: sections, chapters, articles or sessions named by number or by
  quoted title ("chapter 3", "Section 12.1", 第三回, "'Governing Law'").
* ``speakers``: people the question says said or wrote something ("what did
  Caroline say", "according to Tom", 小明说).
* ``corpus``: a whole-corpus intent for the router (``summarise``,
  ``list-all``, ``compare``, ``whole-corpus``); a phrase under a negation ("do
  not summarise", 不要总结) instructs how to answer and does not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from hybridctx.ingest.dates import find_dates

__all__ = ["DateHint", "PositionHint", "QueryHints", "SectionHint", "corpus_intent", "detect_position", "hints_for"]

Anchor = Literal["start", "end"]

# --------------------------------------------------------------------------- positions

_UNIT_WORDS = {
    "topic": "topic", "subject": "topic", "theme": "topic", "question": "topic", "point": "topic", "issue": "topic",
    "item": "topic", "thing": "topic", "chapter": "chapter", "section": "section", "part": "section",
    "paragraph": "paragraph", "page": "page", "message": "turn", "turn": "turn", "line": "turn", "reply": "turn",
    "sentence": "sentence", "passage": "paragraph", "story": "section", "stories": "section", "scene": "section",
    "conversation": "session", "discussion": "session", "session": "session", "meeting": "session",
    "call": "session", "entry": "section", "entries": "section", "clause": "section", "article": "section",
    "episode": "session", "step": "section", "act": "section", "heading": "section",
}  # fmt: skip
_UNITS = r"(?:topic|subject|theme|question|point|issue|item|thing|chapter|section|part|paragraph|page|message" \
         r"|turn|line|repl(?:y|ies)|sentence|passage|stor(?:y|ies)|scene|conversation|discussion|session|meeting" \
         r"|call|entr(?:y|ies)|clause|article|episode|step|act|heading)s?"
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "opening": 1, "initial": 1, "1st": 1, "2nd": 2, "3rd": 3, "last": -1,
    "final": -1, "closing": -1, "concluding": -1, "penultimate": -2, "latest": -1, "earliest": 1,
}  # fmt: skip
_ORDINAL = r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|opening|initial|1st|2nd|3rd|\d{1,2}th" \
           r"|last|final|closing|concluding|penultimate|second[- ]to[- ]last|next[- ]to[- ]last|very\s+(?:first|last)"
_DOCS = (r"document|conversation|text|book|story|chat|contract|article|paper|chapter|discussion|transcript|meeting"
         r"|report|novel|dialogue|essay|agreement|file|call|interview|talk|thread|podcast|video|lecture|speech|email")
# An ordinal qualifying a discourse unit: "the second topic", "the last two messages", "the first thing we talked about".
_ORDINAL_UNIT = re.compile(
    rf"\b(?P<ord>{_ORDINAL})\s+(?:\w+\s+){{0,2}}?(?P<unit>{_UNITS})\b",
    re.I)
# "At the end of the season" is about time, not the text: a bare "at the start/end" counts only
# when it names the document or closes the question.
_EDGE = re.compile(
    rf"\b(?:at|in|near|from|towards?|by)\s+the\s+(?:very\s+)?(?P<edge>beginning|start|outset|opening|end|close"
    rf"|conclusion|top|bottom)(?:\s+of\s+(?:the|this|our|that|my|your)\s+(?:{_DOCS})\b|\s*[?.!]?\s*$)"
    rf"|\bhow\s+(?:does|did)\s+(?:the|this|our)\s+(?:{_DOCS})\s+(?P<verb>begin|start|open|end|finish|conclude|wrap\s+up)\b"
    rf"|\b(?P<lead>opening|closing)\s+(?:lines?|words|remarks|paragraph|sentence|scene)\b",
    re.I)
_ZH_NUM = "零〇一二三四五六七八九十两"
_ZH_UNITS = {"话题": "topic", "主题": "topic", "问题": "topic", "章": "chapter", "回": "chapter", "节": "section",
             "部分": "section", "段": "paragraph", "篇": "section", "幕": "section", "场": "section", "条": "section",
             "句": "sentence", "次对话": "session", "次会议": "session", "次谈话": "session", "轮": "turn",
             "条消息": "turn", "件事": "topic"}
_ZH_ORDINAL_UNIT = re.compile(
    rf"(?:第\s*(?P<num>[{_ZH_NUM}\d]{{1,3}})\s*(?:个|次)?|(?P<last>最后|最末|倒数第[{_ZH_NUM}\d]))\s*(?:一)?\s*(?:个)?\s*"
    rf"(?P<unit>次对话|次会议|次谈话|条消息|件事|话题|主题|问题|部分|章|回|节|段|篇|幕|场|条|句|轮)")
_ZH_DOCS = r"文章|故事|小说|对话|文档|书|全文|合同|报告|谈话|会议|聊天|视频|演讲"
_ZH_EDGE = re.compile(rf"(?:{_ZH_DOCS})的?(?P<zs>开头|开篇|开始)|(?:在|从)(?P<zs2>开头|开篇)|一开始"
                      rf"|(?:{_ZH_DOCS})的?(?P<ze>结尾|末尾|最后)|在(?P<ze2>结尾|末尾)|(?:怎么|如何)(?P<ze3>结束|收尾)")


@dataclass(frozen=True)
class PositionHint:
    """Where in each document the question looks.

    Attributes:
        anchor: ``start`` or ``end``: the end of the document to favour.
        phrase: the words that gave it away.
        ordinal: which unit, 1-based from the start or negative from the end
            (-1 the last); ``None`` for a bare "at the beginning".
        unit: the kind of unit counted (``topic``, ``section``, ``chapter``,
            ``session``, ``turn``, ``paragraph``, ``page``, ``sentence``), or ``None``.
    """

    anchor: Anchor
    phrase: str
    ordinal: int | None = None
    unit: str | None = None


@dataclass(frozen=True)
class DateHint:
    """Dates a question names: ``start`` .. ``end`` as ISO prefixes (``2023-05``), either
    open (``None``) for "since 2019" or "before June 2020"; one date gives both equal."""

    start: str | None
    end: str | None
    phrase: str


@dataclass(frozen=True)
class SectionHint:
    """A section named by the question: ``kind`` (``chapter``, ``section``, ``article``,
    ``session``, ``part``, ... or ``title`` for a quoted heading), its ``number``
    (``3``, ``12.1``, ``IV``) or ``name`` (``Governing Law``), and the ``phrase``."""

    kind: str
    number: str | None
    name: str | None
    phrase: str


@dataclass(frozen=True)
class QueryHints:
    """Every hint of one question (see the module docstring)."""

    position: PositionHint | None = None
    dates: tuple[DateHint, ...] = ()
    sections: tuple[SectionHint, ...] = ()
    speakers: tuple[str, ...] = ()
    corpus: str | None = None
    labels: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        found = set()
        if self.position is not None:
            found.add("position")
            if self.position.ordinal is not None:
                found.add("ordinal")
        if self.dates:
            found.add("date")
        if self.sections:
            found.add("section")
        if self.speakers:
            found.add("speaker")
        if self.corpus:
            found.add("corpus")
        object.__setattr__(self, "labels", frozenset(found))

    @property
    def asks_for_unit(self) -> bool:
        """Whether the answer is a whole unit rather than a passage: the k-th (or
        last) topic, section, session ... of a document, or the whole corpus
        (a summary, a list of all). A span cap would cut such an answer short."""
        return (self.position is not None and self.position.ordinal is not None) or self.corpus is not None


def _ordinal_value(word: str) -> int:
    word = " ".join(word.lower().replace("-", " ").split())
    if word in ("second to last", "next to last"):
        return -2
    if word.startswith("very "):
        word = word[5:]
    if word in _ORDINALS:
        return _ORDINALS[word]
    return int(word[:-2])  # "12th"


def _zh_int(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")}
    digits.update({"〇": 0, "两": 2})
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (digits.get(tens, 1) if tens else 1) * 10 + (digits.get(ones, 0) if ones else 0)
    return digits.get(text) if len(text) == 1 else None


def detect_position(query: str) -> PositionHint | None:
    """The positional hint of ``query``, or ``None`` when it asks about content only.

    When both ends are named ("compare the first and last chapters") the start wins;
    such a question also reads as whole-corpus to the router.
    """
    found: list[tuple[int, PositionHint]] = []
    for m in _ORDINAL_UNIT.finditer(query):
        ordinal = _ordinal_value(re.sub(r"\s+", " ", m.group("ord")))
        unit = _UNIT_WORDS.get(m.group("unit").lower().rstrip("s"), _UNIT_WORDS.get(m.group("unit").lower(), "topic"))
        found.append((m.start(), PositionHint("start" if ordinal > 0 else "end", m.group(0), ordinal, unit)))
    for m in _EDGE.finditer(query):
        word = (m.group("edge") or m.group("verb") or m.group("lead")).lower()
        anchor: Anchor = "start" if word in ("beginning", "start", "outset", "opening", "top", "begin", "open") else "end"
        found.append((m.start(), PositionHint(anchor, m.group(0))))
    for m in _ZH_ORDINAL_UNIT.finditer(query):
        if m.group("last"):
            ordinal = -1 if m.group("last").startswith("最") else -(_zh_int(m.group("last")[3:]) or 1)
        else:
            ordinal = _zh_int(m.group("num")) or 1
        found.append((m.start(), PositionHint("start" if ordinal > 0 else "end", m.group(0), ordinal,
                                              _ZH_UNITS[m.group("unit")])))
    for m in _ZH_EDGE.finditer(query):
        anchor = "end" if (m.group("ze") or m.group("ze2") or m.group("ze3")) else "start"
        found.append((m.start(), PositionHint(anchor, m.group(0))))
    if not found:
        return None
    starts = [h for _, h in sorted(found, key=lambda x: x[0]) if h.anchor == "start"]
    return starts[0] if starts else min(found, key=lambda x: x[0])[1]


# --------------------------------------------------------------------------- dates

_MONTH_ONLY = re.compile(
    r"\b(?:in|during|of|for|since|after|before|until|by|from|between|and|to|through)\s+(?:early\s+|late\s+|mid-?)?"
    r"(?P<month>January|February|March|April|May|June|July|August|September|October|November|December)\b(?!\s+\d)")
_ZH_MONTH_ONLY = re.compile(r"(?<![\d年])(?P<m>[1-9]|1[0-2]|[一二三四五六七八九十]|十[一二])月(?:份)?(?!\s*\d)")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_RANGE_OPEN_START = re.compile(r"\b(?:since|after|from)\s*$|(?:从|自)\s*$", re.I)
_RANGE_OPEN_END = re.compile(r"\b(?:before|until|till|by|prior\s+to|up\s+to)\s*$", re.I)
_ZH_AFTER = re.compile(r"^\s*(?:以后|之后|以来|后)")
_ZH_BEFORE = re.compile(r"^\s*(?:以前|之前|前)")
_BETWEEN = re.compile(r"^\s*(?:and|to|until|through|till|-|–|—|至|到|和|与)\s*$", re.I)


def _date_mentions(query: str) -> list[tuple[int, int, str]]:
    found = [(d.start, d.end, d.iso) for d in find_dates(query, bare_years=True)]
    for m in _MONTH_ONLY.finditer(query):
        s = m.start("month")
        if not any(a <= s < b for a, b, _ in found):
            found.append((s, m.end("month"), f"--{_MONTHS.index(m.group('month').lower()) + 1:02d}"))
    for m in _ZH_MONTH_ONLY.finditer(query):
        if not any(a <= m.start() < b for a, b, _ in found):
            month = _zh_int(m.group("m")) or 0
            if 1 <= month <= 12:
                found.append((m.start(), m.end(), f"--{month:02d}"))
    found.sort()
    return found


def _date_hints(query: str) -> tuple[DateHint, ...]:
    mentions = _date_mentions(query)
    hints: list[DateHint] = []
    i = 0
    while i < len(mentions):
        s, e, iso = mentions[i]
        before = query[max(0, s - 12):s]
        if i + 1 < len(mentions) and _BETWEEN.match(query[e:mentions[i + 1][0]]):
            s2, e2, iso2 = mentions[i + 1]
            if iso.startswith("--") and not iso2.startswith("--") and len(iso2) >= 4:
                iso = iso2[:4] + iso[1:]  # "between March and June 2021"
            hints.append(DateHint(iso, iso2, query[s:e2]))
            i += 2
            continue
        after = query[e:e + 4]
        if _RANGE_OPEN_START.search(before) or _ZH_AFTER.match(after):
            hints.append(DateHint(iso, None, query[s:e]))
        elif _RANGE_OPEN_END.search(before) or _ZH_BEFORE.match(after):
            hints.append(DateHint(None, iso, query[s:e]))
        else:
            hints.append(DateHint(iso, iso, query[s:e]))
        i += 1
    return tuple(hints)


# --------------------------------------------------------------------------- sections and speakers

_NUMBER_WORDS = r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_SECTION_NAMED = re.compile(
    rf"\b(?P<kind>chapter|section|article|clause|part|paragraph|session|book|act|scene|episode|appendix|exhibit"
    rf"|schedule|annex)s?\s+(?P<num>\d{{1,3}}(?:\.\d{{1,3}})*(?:\([a-z0-9]\))?|[IVXLC]{{1,6}}\b|{_NUMBER_WORDS}|[A-H]\b)",
    re.I)
_SECTION_SIGN = re.compile(r"§\s*(?P<num>\d{1,3}(?:\.\d{1,3})*)")
_ZH_SECTION = re.compile(rf"第\s*(?P<num>[{_ZH_NUM}百千\d]{{1,6}})\s*(?P<kind>章|回|节|条|部分|卷|篇|幕|次会议|次对话)")
# A quoted heading: "the 'Governing Law' clause", "parts related to “Termination”", 「违约责任」.
_QUOTED = re.compile(r"(?:['‘\"“](?P<q>[A-Z][^'’\"”\n]{1,60}?)['’\"”]|[「『《](?P<zq>[^」』》\n]{1,30})[」』》])")
_HEADING_NOUN = re.compile(
    r"\b(?:the\s+)?(?P<name>(?:[A-Z][a-z]+\s+){0,4}[A-Z][a-z]+)\s+(?:section|clause|chapter|heading|provision)s?\b")
_QUOTE_CONTEXT = re.compile(
    r"\b(?:section|clause|chapter|heading|part|parts|provision|provisions|titled|entitled|called|named|related\s+to"
    r"|relating\s+to|under|about)\b|章节|条款|部分|一章|一节", re.I)
_STOP_NAMES = frozenset(
    "The This That What Which Who Whom Whose When Where Why How In On At For From By Of And Or But If Is Are Was Were "
    "Do Does Did Can Could Would Should Will Has Have Had Please List Name Give Tell Describe Explain Summarise "
    "Summarize Compare After Before During Since According Section Chapter Article Part Clause Session January "
    "February March April May June July August September October November December Monday Tuesday Wednesday "
    "Thursday Friday Saturday Sunday I We You He She They It".split())
_SPEAKER_EN = re.compile(
    r"\b(?:did|does|do|has|had|will|would)\s+(?P<a>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\s+(?:\w+\s+)?"
    r"(?:say|said|tell|told|mention|mentioned|ask|asked|reply|replied|suggest|suggested|write|wrote|text|texted"
    r"|share|shared|talk|talked|recommend|recommended|admit|admitted|promise|promised|claim|claimed|describe|explain|think)\b"
    r"|\b(?P<b>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\s+(?:said|says|told|mentioned|asked|replied|suggested|wrote|texted"
    r"|shared|claimed|promised|recommended|admitted|explained|described)\b"
    r"|\b[Aa]ccording\s+to\s+(?P<c>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b"
    r"|\b(?P<d>[A-Z][a-z]+)[’']s\s+(?:message|messages|reply|replies|answer|words|comment|comments|remark|remarks"
    r"|turn|post|posts|email|text)\b"
    r"|\b(?:by|from)\s+(?P<e>[A-Z][a-z]+)\s*\??$")
_SPEAKER_ZH = re.compile(
    r"(?<![\u4e00-\u9fff])(?P<z>[\u4e00-\u9fff]{2,3}?)(?:曾经|当时|都|又|还|也)?(?:说过|说了|说|提到|提过|问过|问|回答|回复|告诉|建议|讲过|讲|表示|写道|发消息)")
# Characters no name here holds: function words, and the 中/里 of "书中提到", "文中".
_ZH_NOT_IN_NAMES = "的了是在和与谁什么哪吗呢有没中里这那共都也就很再接第章回节条段部个整一二三四五六七八九十"
_ZH_NOT_NAMES = frozenset(("他们 她们 我们 你们 大家 有人 别人 他 她 我 你 谁 作者 文章 书中 文中 "
                           "对话中 里面 这里 那里 什么 怎么 为什么 哪里 如何").split())


def _section_hints(query: str) -> tuple[SectionHint, ...]:
    found: list[tuple[int, SectionHint]] = []
    for m in _SECTION_NAMED.finditer(query):
        num = m.group("num")
        # "part one of the plan" is fine; "section A" needs a capital letter, "act II" a numeral.
        found.append((m.start(), SectionHint(m.group("kind").lower(), num, None, m.group(0))))
    for m in _SECTION_SIGN.finditer(query):
        found.append((m.start(), SectionHint("section", m.group("num"), None, m.group(0))))
    for m in _ZH_SECTION.finditer(query):
        kind = {"章": "chapter", "回": "chapter", "节": "section", "条": "article", "部分": "part", "卷": "book",
                "篇": "part", "幕": "act", "次会议": "session", "次对话": "session"}[m.group("kind")]
        found.append((m.start(), SectionHint(kind, m.group("num"), None, m.group(0))))
    if _QUOTE_CONTEXT.search(query):
        for m in _QUOTED.finditer(query):
            name = m.group("q") or m.group("zq")
            if len(name.split()) <= 8:
                found.append((m.start(), SectionHint("title", None, name.strip(), m.group(0))))
    for m in _HEADING_NOUN.finditer(query):
        name = m.group("name")
        words = name.split()
        while words and words[0] in _STOP_NAMES:
            words = words[1:]
        if words and not any(m.start() <= s < m.end() for s, _ in found):
            found.append((m.start(), SectionHint("title", None, " ".join(words), m.group(0))))
    found.sort(key=lambda x: x[0])
    return tuple(h for _, h in found)


def _speaker_hints(query: str) -> tuple[str, ...]:
    names: list[str] = []
    for m in _SPEAKER_EN.finditer(query):
        name = next(g for g in m.groups() if g)
        words = [w for w in name.split() if w not in _STOP_NAMES]
        if words and words[0] == name.split()[0] and " ".join(words) not in names:
            names.append(" ".join(words))
    for m in _SPEAKER_ZH.finditer(query):
        name = m.group("z")
        for stop in ("那么", "当时", "曾经"):
            name = name.replace(stop, "")
        if len(name) >= 2 and name not in _ZH_NOT_NAMES and not any(c in name for c in _ZH_NOT_IN_NAMES) \
                and name not in names:
            names.append(name)
    return tuple(names)


# --------------------------------------------------------------------------- whole-corpus intent

# The first matching label wins. Bare "all" or 比较 ("rather", as in 比较好) are too common in
# local questions to count alone.
_INTENT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("summarise", re.compile(
        r"\bsummar(?:i[sz]e|i[sz]ing|y|ies)\b|\btl;?dr\b|\boverview\b|\bgist\b|\boutline\b|\brecap\b"
        r"|\bsum\s+(?:it|this|everything)\s+up\b|\bin\s+a\s+nutshell\b"
        r"|总结|概括|概述|摘要|归纳|综述|梗概|大意|讲了些什么|说了些什么", re.I)),
    ("list-all", re.compile(
        r"\blist (?:all|every|each)\b|\benumerate\b|\bhow many times\b|\bevery (?:time|instance) (?:that )?\w+"
        r"|\b(?:all|every) (?:the )?(?:chapters?|characters?|mentions?|occurrences?|instances?|places?|people"
        r"|names?|events?|sections?|times|clauses?|dates?|books?|items?|topics?)\b"
        r"|列出(?:所有|全部|每)|列举|所有的?(?:人物|角色|章节|事件|地点|名字|条款)|一共|总共|多少次", re.I)),
    ("compare", re.compile(
        r"\b(?:compar(?:e|es|ing|ison)|contrast(?:s|ing)?)\b.{0,40}?"
        r"\b(?:chapters?|sections?|parts?|documents?|books?|versions?|across|each|every|all|sessions?)\b"
        r"|\bacross (?:the )?(?:whole|entire|all|chapters|documents|sections|sessions)\b"
        r"|对比|异同|比较(?:一下)?(?:第|各|所有|全部|前后|不同)|(?:和|与|跟).{1,20}(?:比较|相比)", re.I)),
    ("whole-corpus", re.compile(
        r"\boverall\b|\bthroughout\b|\bmain (?:themes?|points|ideas|arguments?|takeaways?)\b|\bkey takeaways?\b"
        r"|\b(?:whole|entire|full) (?:book|document|text|story|novel|report|contract|paper|corpus"
        r"|transcript|conversation|thing|thread|meeting|chat)\b|\bfrom (?:start|beginning) to (?:end|finish)\b"
        r"|全文|全书|整本|整篇|整个(?:文档|故事|小说|报告|合同|对话|会议)|通篇|贯穿|自始至终|从头到尾"
        r"|总体|整体|主旨|中心思想", re.I)),
)
# An intent phrase right after a negation ("don't just list all", 不要总结) instructs how to
# answer; it does not ask about the whole corpus.
_NEGATED = re.compile(
    r"(?:\b(?:not|never|don[’']?t|doesn[’']?t|didn[’']?t|no need to|without|instead of|rather than)"
    r"(?:\s+\w+){0,2}\s*|(?:不要|不用|无需|无须|不必|不需要|别|勿)\S{0,2})$", re.I)


def corpus_intent(query: str) -> str | None:
    """Label of a whole-corpus intent in the question, or ``None``.

    Labels: ``summarise``, ``list-all``, ``compare``, ``whole-corpus``
    (English and Chinese phrasings, e.g. "summarise", "list every",
    "compare the chapters", "overall", 总结, 列出所有, 对比, 全文). A phrase
    under a negation ("don't summarise", 不要总结) does not count.
    """
    for label, pattern in _INTENT_PATTERNS:
        for match in pattern.finditer(query):
            if not _NEGATED.search(query[max(0, match.start() - 40):match.start()]):
                return label
    return None


def hints_for(query: str) -> QueryHints:
    """Every hint of ``query`` (see :class:`QueryHints`)."""
    return QueryHints(position=detect_position(query), dates=_date_hints(query), sections=_section_hints(query),
                      speakers=_speaker_hints(query), corpus=corpus_intent(query))
