"""``make test`` lints first: ruff on the code, mypy strict on the core packages.

Why: a lint step that quietly stops running (a target dropped from ``test``'s prerequisites, a
package left out of mypy's ``files``, ruff or mypy missing from the ``dev`` extra that CI installs)
looks exactly like a clean lint. These read the Makefile and pyproject.toml: nothing is run.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = {"hybridctx/ingest", "hybridctx/retrieval", "hybridctx/packing", "hybridctx/routing", "hybridctx/config",
        "hybridctx/facade.py", "hybridctx/datatypes.py", "hybridctx/errors.py"}


def _makefile() -> str:
    return (ROOT / "Makefile").read_text(encoding="utf-8")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_make_test_depends_on_lint_and_lint_runs_ruff_and_mypy() -> None:
    text = _makefile()
    prerequisites = re.search(r"^test:(.*)$", text, re.MULTILINE)
    assert prerequisites and "lint" in prerequisites.group(1).split()
    recipe = text[text.index("\nlint:"):].split("\n\n", 1)[0]
    assert "$(BIN)/ruff check $(LINT_PATHS)" in recipe and "$(BIN)/mypy" in recipe
    paths = re.search(r"^LINT_PATHS\s*:=\s*(.+)$", text, re.MULTILINE)
    assert paths and set(paths.group(1).split()) >= {"hybridctx", "embeddings", "indexers", "tests"}


def test_mypy_is_strict_on_every_core_package_and_the_linters_are_dev_dependencies() -> None:
    config = _pyproject()
    mypy = config["tool"]["mypy"]
    assert mypy["strict"] is True and set(mypy["files"]) == CORE
    for path in CORE:
        assert (ROOT / path).exists(), f"mypy's files name {path}, which is gone"
    dev = {re.split(r"[<>=\[ ;]", req, maxsplit=1)[0] for req in config["project"]["optional-dependencies"]["dev"]}
    assert {"ruff", "mypy"} <= dev
    assert {"E", "F", "W", "B"} <= set(config["tool"]["ruff"]["lint"]["select"])
