"""Loading third-party backends from entry points, lazily.

Why shared: encoders and LLMs register plug-ins the same way (an entry-point
group each); built-ins sit in the same registry, and a plug-in is imported
only when a name misses.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

__all__ = ["load_entry_points"]

logger = logging.getLogger(__name__)


def load_entry_points(group: str, registry: dict[str, Callable[..., Any]], what: str) -> None:
    """Add every entry point of ``group`` not yet in ``registry`` (loading each)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        if ep.name not in registry:
            logger.info("loading %s plug-in %s from %s", what, ep.name, ep.value)
            registry[ep.name] = ep.load()
