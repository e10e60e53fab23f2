"""Checking settings given as mappings: unknown keys name the nearest valid one.

Why shared: encoder settings, route limits and model profiles all come from
users' dicts and TOML files, and a typo should be answered the same way.
"""

from __future__ import annotations

import difflib
from dataclasses import fields
from typing import Any, Iterable, Mapping

from hybridctx.errors import ConfigError

__all__ = ["did_you_mean", "reject_unknown_keys"]


def did_you_mean(word: str, options: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` (or ``'x' or 'y'``) for the closest options, else ``""``."""
    near = difflib.get_close_matches(word, sorted(options), n=n, cutoff=cutoff)
    if not near:
        return ""
    return "; did you mean " + " or ".join(f"'{w}'" for w in near) + "?"


def reject_unknown_keys(values: Mapping[str, Any], cls: type, what: str) -> None:
    """Raise ``ConfigError`` for the first key of ``values`` that is not a field of dataclass ``cls``."""
    known = {f.name for f in fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown {what} '{key}'{did_you_mean(key, known)}")
