"""docs/cli.md is generated from --help and must be current."""

from __future__ import annotations

from pathlib import Path

from hybridctx.cli.reference import render_cli_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render_cli_reference(), (
        "docs/cli.md is stale; regenerate it with: python -m hybridctx.cli.reference > docs/cli.md"
    )


def test_reference_covers_every_verb() -> None:
    text = render_cli_reference()
    for verb in ("index", "retrieve", "route", "info", "delete"):
        assert f"## hybridctx {verb}" in text
