"""The indexes a server offers, each under the name a client asks for.

Why its own module: the gateway picks an index by the request's ``model`` and
the MCP server by a tool's ``index`` argument, so both read the same
``--index NAME=DIR`` specs, refuse the same mistakes (a name given twice, a
name a URL path cannot carry) before any index loads, and open each once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from hybridctx.errors import InputError

__all__ = ["IndexSpec", "close_indexes", "open_indexes", "parse_index_specs"]

# Model names travel in JSON and in chat UIs' model pickers: letters, digits and . _ - : / only.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


@dataclass(frozen=True)
class IndexSpec:
    """One index and the name it is served under.

    Attributes:
        name: what a client sends as ``model`` (gateway) or ``index`` (MCP).
        path: the index directory.
    """

    name: str
    path: Path


def parse_index_specs(values: Iterable[str]) -> tuple[IndexSpec, ...]:
    """``NAME=DIR`` or ``DIR`` (named after the directory) specs, checked.

    Raises:
        InputError: no spec, an empty or unusable name, or a name given twice.
    """
    specs: list[IndexSpec] = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).name or value, value
        if not path:
            raise InputError(f"--index {value!r} names no directory; give NAME=DIR or DIR")
        if not _NAME.match(name):
            raise InputError(f"--index {value!r}: the name {name!r} must start with a letter or digit and hold "
                             "only letters, digits and . _ - : / (at most 128); give NAME=DIR")
        if any(s.name == name for s in specs):
            raise InputError(f"--index {value!r}: the name {name!r} is given twice; give each index its own NAME=DIR")
        specs.append(IndexSpec(name, Path(path)))
    if not specs:
        raise InputError("give at least one --index DIR (or NAME=DIR, repeatable)")
    return tuple(specs)


def open_indexes(specs: Iterable[IndexSpec], *, store_url: str | None = None) -> dict[str, Any]:
    """Open every index (and the encoder it was built with), in the order given.

    Raises:
        IndexStoreError: an index is missing or unusable (the message names it).
    """
    from hybridctx.facade import HybridContext

    opened: dict[str, Any] = {}
    try:
        for spec in specs:
            opened[spec.name] = HybridContext.open(spec.path, store_url=store_url)
    except BaseException:
        close_indexes(opened)
        raise
    return opened


def close_indexes(indexes: Mapping[str, Any]) -> None:
    """Close every opened index."""
    for hc in indexes.values():
        hc.close()
