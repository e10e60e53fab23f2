"""The eval extra: its packages are imported only through hybridctx/eval/requires.py (a missing one names
``hybridctx[eval]``), and evaluation data comes from --data or $HYBRIDCTX_EVAL_DATA, never a guessed path."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from hybridctx.errors import MissingDependencyError
from hybridctx.eval.requires import EVAL_PACKAGES, eval_import, require_eval

PACKAGE = Path(__file__).resolve().parents[2] / "hybridctx"
INDEXERS = Path(__file__).resolve().parents[2] / "indexers"
EMBEDDINGS = Path(__file__).resolve().parents[2] / "embeddings"
# The integrations import llama-index-core for the `llamaindex` extra, each behind its own hint.
ALLOWED = {PACKAGE / "integrations" / "llama_index.py", PACKAGE / "eval" / "requires.py"}


def _direct_imports(path: Path) -> list[str]:
    """Imports of eval-extra packages outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    roots = {name.split(".")[0] for name in EVAL_PACKAGES}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in roots]
    return found


def test_eval_packages_are_imported_only_through_requires() -> None:
    offenders = [hit for root in (PACKAGE, INDEXERS, EMBEDDINGS) for path in sorted(root.rglob("*.py"))
                 if path not in ALLOWED for hit in _direct_imports(path)]
    assert offenders == []


@pytest.mark.parametrize("module", ["bm25s", "matplotlib", "sentence_transformers", "llama_index.core"])
def test_a_missing_eval_package_names_the_extra(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError, as when not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'hybridctx\[eval\]'"):
        eval_import(module, "a test")
    with pytest.raises(MissingDependencyError, match=EVAL_PACKAGES[module]):
        require_eval((module,), "a test")


def test_eval_without_matplotlib_fails_before_any_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    from hybridctx.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["eval", "qa", "--data", str(tmp_path), "--methods", "truncation", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hybridctx[eval]" in err and "matplotlib" in err


def test_eval_data_comes_from_the_flag_or_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    from hybridctx.cli import main

    monkeypatch.delenv("HYBRIDCTX_EVAL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    for verb in ("qa", "route"):
        assert main(["eval", verb, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == ("hybridctx eval: error: no evaluation data given: pass --data DIR (a folder of datasets, "
                       "or one folder with docs.jsonl and qa.jsonl) or set HYBRIDCTX_EVAL_DATA")
    monkeypatch.setenv("HYBRIDCTX_EVAL_DATA", str(tmp_path / "nowhere"))
    assert main(["eval", "qa", "--methods", "truncation", "--no-progress"]) == 2
    assert "data directory" in capsys.readouterr().err and "nowhere" in str(tmp_path / "nowhere")
