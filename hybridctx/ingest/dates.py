"""Calendar dates written in text: "8 May, 2023", "May 8th 2023", 2023-05-08, 2023年5月8日.

Why its own module: the structure pass reads the dates of session headers and
chat-export stamps, and the query hints read the dates a question names; both
must agree on what a date is and how it is normalised, or "May 2023" in a
question would not meet "8 May, 2023" in a header. Only the forms people write
are read (no relative dates such as "last Tuesday", which need a reference day).

A date is normalised to ISO 8601 at the precision it was written: ``2023-05-08``,
``2023-05`` or ``2023``. Offsets are exact: ``text[start:end]`` is the date as
written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DateMention", "find_dates", "within"]

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = r"(?P<month>January|February|March|April|May|June|July|August|September|October|November|December" \
         r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:1[6-9]|2[0-1])\d\d)"
_ZH_DIGITS = "〇零一二三四五六七八九"
_ZH_VALUE = {c: (0 if i < 2 else i - 1) for i, c in enumerate(_ZH_DIGITS)}

# Most specific first: the first pattern that matches at a position wins.
_PATTERNS = (
    re.compile(rf"\b{_YEAR}-(?P<m>[01]?\d)-(?P<d>[0-3]?\d)\b"),
    re.compile(rf"\b{_YEAR}/(?P<m>[01]?\d)/(?P<d>[0-3]?\d)\b"),
    re.compile(rf"\b{_DAY}(?:\s+of)?\s+{_MONTH},?\s+{_YEAR}\b", re.I),
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.I),
    # US numeric order (month first), as chat exports write it; a first field over 12 is a day.
    re.compile(r"\b(?P<a>[0-3]?\d)/(?P<b>[0-3]?\d)/(?P<y>\d{4}|\d{2})\b"),
    re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b", re.I),
    re.compile(r"(?P<year>\d{4})\s*年\s*(?P<m>[01]?\d)\s*月(?:\s*(?P<d>[0-3]?\d)\s*[日号])?"),
    re.compile(rf"(?P<zy>[{_ZH_DIGITS}]{{4}})年(?P<zm>[{_ZH_DIGITS}十]{{1,3}})月(?:(?P<zd>[{_ZH_DIGITS}十]{{1,3}})[日号])?"),
)
_BARE_YEAR = re.compile(r"(?<![\d.,$£€/-])\b(?P<year>(?:19|20)\d\d)\b(?![\d.,%/-]\d)")
_ZH_BARE_YEAR = re.compile(r"(?P<year>(?:19|20)\d\d)\s*年(?!\s*\d{1,2}\s*月)")


@dataclass(frozen=True)
class DateMention:
    """One date written in a text.

    Attributes:
        start: offset of its first character.
        end: offset one past its last character.
        iso: ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``, at the precision written.
    """

    start: int
    end: int
    iso: str


def find_dates(text: str, *, bare_years: bool = False) -> list[DateMention]:
    """Every date in ``text``, in order, without overlaps.

    Args:
        text: any text.
        bare_years: also read a year on its own ("in 2023", 2023年) as a date;
            off for documents (numbers in prose are rarely years), on for questions.
    """
    found: list[DateMention] = []
    taken: list[tuple[int, int]] = []
    patterns = _PATTERNS + ((_BARE_YEAR, _ZH_BARE_YEAR) if bare_years else ())
    for pattern in patterns:
        for match in pattern.finditer(text):
            if any(match.start() < e and s < match.end() for s, e in taken):
                continue
            iso = _normalise(match)
            if iso is None:
                continue
            taken.append((match.start(), match.end()))
            found.append(DateMention(match.start(), match.end(), iso))
    found.sort(key=lambda d: d.start)
    return found


def within(iso: str, scope: str) -> bool:
    """Whether the date ``iso`` lies inside ``scope`` (both ISO, any precision):
    ``2023-05-08`` is within ``2023-05`` and ``2023``; ``2023-05`` is within ``2023``."""
    return iso.startswith(scope) and (len(iso) == len(scope) or iso[len(scope)] == "-")


def _normalise(match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    if groups.get("zy"):
        year = int("".join(str(_ZH_VALUE[c]) for c in groups["zy"]))
        month = _zh_number(groups["zm"])
        day = _zh_number(groups["zd"]) if groups.get("zd") else None
    elif groups.get("a"):
        a, b, y = int(groups["a"]), int(groups["b"]), int(groups["y"])
        month, day = (a, b) if a <= 12 else (b, a)
        year = y + 2000 if y < 100 else y
    else:
        year = int(groups["year"])
        raw_month = groups.get("month") or groups.get("m")
        if raw_month is None:
            return f"{year:04d}"
        month = _MONTHS[raw_month.lower().rstrip(".")] if not raw_month.isdigit() else int(raw_month)
        raw_day = groups.get("day") or groups.get("d")
        day = int(raw_day) if raw_day else None
    if month is None or not 1 <= month <= 12 or not 1000 <= year <= 2199:
        return None
    if day is None:
        return f"{year:04d}-{month:02d}"
    if not 1 <= day <= 31:
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def _zh_number(text: str | None) -> int | None:
    """一 .. 三十一 as an int (None when not a number)."""
    if not text:
        return None
    if "十" in text:
        tens, _, ones = text.partition("十")
        if (tens and tens not in _ZH_VALUE) or (ones and ones not in _ZH_VALUE):
            return None
        return (_ZH_VALUE[tens] if tens else 1) * 10 + (_ZH_VALUE[ones] if ones else 0)
    if all(c in _ZH_VALUE for c in text):
        return int("".join(str(_ZH_VALUE[c]) for c in text))
    return None
