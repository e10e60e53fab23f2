"""Questions about *where* in a document: "the first topic", "how does it end", 第一回.

Why: some questions name a position, not a content — "What is the second
topic we discussed?" shares no words or meaning with its answer, so neither
dense nor BM25 search can find it, while the start of the document holds it.
On L-Eval's topic-retrieval task, truncation to the first tokens beat every
retrieval method for this reason. When a question asks about a position, the
retriever adds a ranking of landmarks by their distance from that end of each
document to the fusion, so the packed context covers that end as well as the
semantic hits.

Detection is deliberately narrow: an ordinal must qualify a discourse unit
("first topic", "last chapter", 第三个话题, 最后一章) or the question must name
the beginning or end ("at the start of", "how does the story end", 开头, 结尾).
"When did she first go to Paris?" does not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["PositionIntent", "detect_position"]

Anchor = Literal["start", "end"]

_UNITS = (
    r"topics?|subjects?|themes?|questions?|points?|issues?|items?|things?|chapters?|sections?|parts?"
    r"|paragraphs?|pages?|messages?|turns?|lines?|sentences?|passages?|stories|story|scenes?"
    r"|conversations?|discussions?|sessions?|entries|entry|clauses?|articles?|episodes?|steps?"
)
_START_ORDINALS = r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|opening|initial|1st|2nd|3rd|[4-9]th|10th"
_END_ORDINALS = r"last|final|closing|concluding|penultimate"
_ZH_UNITS = r"话题|主题|问题|章|回|节|部分|段|篇|幕|场|条|句|个话题"

_DOCS = (
    r"document|conversation|text|book|story|chat|contract|article|paper|chapter|discussion"
    r"|transcript|meeting|report|novel|dialogue|essay|agreement|file|call|interview|talk"
)
# "At the end of the season" is about time, not the text: a bare "at the start/end"
# counts only when it names the document or closes the question.
_EDGE = r"\b(?:at|in|near|from|towards?)\s+the\s+(?:very\s+)?(?:{words})(?:\s+of\s+(?:the|this|our)\s+(?:{docs})\b|\s*[?.!]?\s*$)"
_ZH_DOCS = r"文章|故事|小说|对话|文档|书|全文|合同|报告|谈话|会议|聊天"

_START = re.compile(
    rf"\b(?:{_START_ORDINALS})\s+(?:\w+\s+){{0,2}}?(?:{_UNITS})\b"
    + "|" + _EDGE.format(words="beginning|start|outset|opening", docs=_DOCS)
    + rf"|\bhow\s+does\s+(?:the\s+|this\s+)(?:{_DOCS})\s+(?:begin|start|open)\b"
    rf"|第\s*[一二三四五六七八九十\d]{{1,3}}\s*(?:个|次)?\s*(?:{_ZH_UNITS})"
    rf"|(?:{_ZH_DOCS})的?(?:开头|开篇)|(?:在|从)(?:开头|开篇)",
    re.I,
)
_END = re.compile(
    rf"\b(?:{_END_ORDINALS})\s+(?:\w+\s+){{0,2}}?(?:{_UNITS})\b"
    + "|" + _EDGE.format(words="end|close|conclusion", docs=_DOCS)
    + rf"|\bhow\s+does\s+(?:the\s+|this\s+)(?:{_DOCS})\s+(?:end|finish|conclude)\b"
    rf"|最后\s*(?:一)?\s*(?:个|次)?\s*(?:{_ZH_UNITS})|(?:{_ZH_DOCS})的?(?:结尾|末尾)|在(?:结尾|末尾)",
    re.I,
)


@dataclass(frozen=True)
class PositionIntent:
    """A question's positional intent.

    Attributes:
        anchor: ``start`` or ``end``: the end of each document to favour.
        phrase: the words that gave it away (for logs and explanations).
    """

    anchor: Anchor
    phrase: str


def detect_position(query: str) -> PositionIntent | None:
    """The positional intent of ``query``, or ``None`` when it asks about content only.

    When both ends are named ("compare the first and last chapters") the start wins;
    such a question also reads as whole-corpus to the router.
    """
    start, end = _START.search(query), _END.search(query)
    if start is not None:
        return PositionIntent("start", start.group(0))
    if end is not None:
        return PositionIntent("end", end.group(0))
    return None
