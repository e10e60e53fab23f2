"""Docstrings point at the docs for their numbers; every such pointer must lead somewhere.

Why: measured numbers live in docs/benchmarks.md (and docs/encoders.md), where a rerun updates
them, and code says why plus "(measured: docs/benchmarks.md#section)". A renamed heading would
leave the pointer dangling without anyone noticing; this test notices.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("hybridctx", "embeddings", "indexers", "benchmarks")
POINTER = re.compile(r"\bdocs/([\w-]+\.md)(?:#([\w-]+))?")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def pointers() -> list[tuple[str, int, str, str | None]]:
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for doc, section in POINTER.findall(line):
                    found.append((f"{path.relative_to(ROOT)}:{n}", n, doc, section or None))
    return found


def test_anchor_matches_github() -> None:
    assert anchor("Change 2: the router's budget grows with the scope") == \
        "change-2-the-routers-budget-grows-with-the-scope"
    assert anchor("`hybridctx eval qa`") == "hybridctx-eval-qa"
    assert anchor("Structure and query hints (issue 13)") == "structure-and-query-hints-issue-13"


def test_there_are_pointers() -> None:
    assert any(section for *_, section in pointers()), "no docs/X.md#section pointer found in the sources"


@pytest.mark.parametrize("where,line,doc,section", pointers())
def test_pointer_resolves(where: str, line: int, doc: str, section: str | None) -> None:
    path = ROOT / "docs" / doc
    assert path.is_file(), f"{where}: docs/{doc} does not exist"
    if section:
        assert section in anchors(path), f"{where}: docs/{doc} has no heading #{section}"
