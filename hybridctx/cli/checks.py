"""Checks of command-line values, made before anything heavy is loaded.

Why: a bad flag must fail at once with one line naming it and exit 2, not after
the encoder has loaded (seconds), nor as a ``MemoryError`` deep inside a search
(``--budget 1000000000000`` asked NumPy for 182 GiB), nor silently (``nan``
compares false with every cost, so ``--max-usd nan`` meant "no limit"). Each
check is a plain function that returns the clean value or raises
:class:`~hybridctx.errors.InputError`, so the ``_cmd_*`` functions and library
callers can use them; :func:`arg_type` turns one into an argparse ``type=``
whose message the parser prints as its one error line. Nothing here imports
more than the standard library.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

from hybridctx.errors import InputError

__all__ = ["MAX_BUDGET", "MAX_LIMIT", "arg_type", "check_budget", "check_limit", "check_query", "check_spend",
           "check_texts"]

MAX_BUDGET = 10_000_000
"""Largest token budget the command line accepts (10M tokens, about 40 MB of text).

It is ten times the largest model window in the shipped profiles (1,010,000),
so no real request is refused; the search sizes its candidate lists by the
budget (50 hits per 1,024 tokens), which at 10^12 tokens meant a 182 GiB array."""


def check_budget(value: Any, flag: str = "--budget") -> int:
    """A token budget: a whole number from 1 to :data:`MAX_BUDGET`.

    Args:
        value: the flag's text (or an int).
        flag: the flag's name, for the message ("" leaves it out).

    Raises:
        InputError: not a whole number, below 1 or above :data:`MAX_BUDGET`.
    """
    number = _whole_number(value, flag)
    if number < 1:
        raise InputError(f"{_named(flag)}{number} is not a budget: give a number of tokens from 1 to {MAX_BUDGET:,}")
    if number > MAX_BUDGET:
        raise InputError(f"{_named(flag)}{number} is above the largest budget hybridctx packs, "
                         f"{MAX_BUDGET:,} tokens (cli_checks.MAX_BUDGET); give 1 to {MAX_BUDGET:,}")
    return number


MAX_LIMIT = 1e9
"""Largest limit :func:`check_limit` accepts (a billion dollars, 31 years, a billion GiB).

A bound rather than any finite float: a timeout of ``1e300`` seconds overflowed the
platform's ``time_t`` in a watchdog thread's wait (``OverflowError``, a traceback)."""


def check_limit(value: Any, flag: str = "", unit: str = "units") -> float:
    """A positive, finite limit (dollars, seconds, GiB) up to :data:`MAX_LIMIT`; ``nan``, ``inf``
    and ``<= 0`` are refused.

    Args:
        value: the flag's text (or a number).
        flag: the flag's name, for the message ("" leaves it out).
        unit: what the number counts (``"dollars"``), for the message.

    Raises:
        InputError: not a number, not finite, or not above 0.
    """
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{_named(flag)}{_shown(value)} is not a number of {unit}") from None
    if not math.isfinite(number) or number <= 0 or number > MAX_LIMIT:
        raise InputError(f"{_named(flag)}{_shown(value)} must be a positive number of {unit}, at most "
                         f"{MAX_LIMIT:g} (leave the flag out for no limit)")
    return number


def check_questions(value: Any, flag: str = "--expected-questions") -> int:
    """A count of questions: a whole number from 1 to a million.

    Raises:
        InputError: not a whole number, below 1 or above 1,000,000.
    """
    text = str(value).strip()
    if isinstance(value, bool) or not (isinstance(value, int) or text.isdigit()):
        raise InputError(f"{_named(flag)}{_shown(value)} is not a whole number of questions")
    number = int(text)
    if not 1 <= number <= 1_000_000:
        raise InputError(f"{_named(flag)}{number} is not a number of questions: give 1 to 1,000,000")
    return number


def check_query(value: Any, what: str = "QUERY") -> str:
    """A query with some text in it (all-whitespace queries are refused).

    Raises:
        InputError: not a string, empty after stripping whitespace, or not Unicode text.
    """
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} is empty: give the question to search for")
    check_texts([value], what)
    return value


def check_texts(values: Any, what: str) -> None:
    """Refuses strings UTF-8 cannot hold: lone surrogates, which is what Python makes of
    bytes that are not UTF-8 in a command-line argument (``\\udcff`` for byte 0xff).

    Raises:
        InputError: naming ``what`` and the first such character.
    """
    for value in values:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = ord(value[exc.start])
            raise InputError(f"{what} is not UTF-8 text (character \\u{bad:04x} at {exc.start}, "
                             f"{'byte 0x%02x' % (bad - 0xDC00) if 0xDC80 <= bad <= 0xDCFF else 'a lone surrogate'})"
                             ) from None


def arg_type(check: Callable[..., Any], **options: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` running ``check(text, flag="", **options)``; its message becomes
    the parser's error line (argparse names the flag itself: ``argument --budget: 0 is not ...``)."""

    def convert(text: str) -> Any:
        try:
            return check(text, flag="", **options)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__
    return convert


def check_spend(estimate: Any, max_usd: float | None) -> None:
    """Refuse an indexing estimate (``hybridctx.ingest.index_cost``) over ``--max-usd``, or of unknown price.

    Raises:
        InputError: naming the price and the limit; nothing has been sent.
    """
    if max_usd is None or estimate is None:
        return
    if estimate.usd is None:
        raise InputError(f"the encoder's price per token is unknown, so --max-usd {max_usd:g} cannot be checked; "
                         "give --usd-per-mtok PRICE (US dollars per million tokens)")
    if estimate.usd > max_usd:
        raise InputError(f"indexing would embed {estimate.tokens_to_pay:,} tokens for ${estimate.usd:.4f}, more "
                         f"than --max-usd {max_usd:g}; nothing was sent (raise the limit, or a larger --stride "
                         "sends fewer tokens)")


def _whole_number(value: Any, flag: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"{_named(flag)}{value!r} is not a whole number of tokens")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:  # also the 4,300-digit limit of int()
        raise InputError(f"{_named(flag)}{_shown(value)} is not a whole number of tokens") from None


def _named(flag: str) -> str:
    return f"{flag} " if flag else ""


def _shown(value: Any, limit: int = 40) -> str:
    text = str(value)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"
