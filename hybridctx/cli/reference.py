"""The CLI reference in Markdown, generated from ``--help``.

Why: the reference must never drift from the parser; a test compares
``docs/cli.md`` with this output. Regenerate with::

    python -m hybridctx.cli.reference > docs/cli.md
"""

from __future__ import annotations

import argparse

from hybridctx.cli.app import build_parser

__all__ = ["render_cli_reference"]

WIDTH = 100


def render_cli_reference() -> str:
    parser = build_parser(width=WIDTH)
    parts = [
        "# Command-line reference",
        "",
        "Generated from `--help` by `python -m hybridctx.cli.reference > docs/cli.md`; a test fails when it is stale.",
        "",
        "Errors print one line on stderr and exit with code 2 for bad usage or bad input, 1 for internal errors.",
        "",
        "## hybridctx",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts += ["", f"## hybridctx {name}", "", "```text", sub.format_help().rstrip(), "```"]
                parts += _nested(sub, f"hybridctx {name}")
    return "\n".join(parts) + "\n"


def _nested(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    """Sections for sub-commands of a sub-command (``hybridctx eval niah``)."""
    parts: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts += ["", f"### {prefix} {name}", "", "```text", sub.format_help().rstrip(), "```"]
    return parts


if __name__ == "__main__":  # pragma: no cover
    print(render_cli_reference(), end="")
