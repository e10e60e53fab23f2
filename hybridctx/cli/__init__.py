"""The ``hybridctx`` command line (``app``), its pre-flight checks and its generated reference.

Why ``main`` is a wrapper: library code imports ``hybridctx.cli.checks`` for the
same value checks the command line makes, and that must not load the parser and
every verb with it.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hybridctx`` command line on ``argv`` (default ``sys.argv[1:]``); the exit status."""
    from hybridctx.cli.app import main as run

    return run(argv)
