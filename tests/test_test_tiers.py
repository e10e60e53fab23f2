"""The two test tiers: ``make test`` runs every test (CI and the README use it), ``make check``
leaves out what is marked heavy, slow or gpu.

Why: ``pytest -m`` accepts any name, registered or not, so a misspelt marker in the Makefile
would quietly turn the fast tier into the full suite, and a filter slipped into ``make test``
would quietly shrink what CI runs; and a new browser, server-process or local-LLM test put in an
unmarked module would quietly slow the edit loop. These read the Makefile, pyproject.toml and the
test modules' text: nothing is run.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

# What a module needs that makes it heavy: a browser, a database server, a child process kept
# running, the embedded SmolLM2 model, a Qdrant client.
HEAVY_SIGNS = re.compile(r"playwright|chromium|pgserver|Popen\(|load_smollm2|smollm2_path|LocalTransformersLLM"
                         r"|QdrantClient")
MODULE_MARK = re.compile(r"^pytestmark = .*\bpytest\.mark\.(heavy|slow)\b", re.MULTILINE)


def _recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def _check_markers() -> str:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^CHECK_MARKERS\s*:?=\s*(.+)$", text, re.MULTILINE)
    assert found, "the Makefile defines CHECK_MARKERS for make check"
    return found.group(1).strip()


def _registered() -> set[str]:
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]
    return {line.split(":", 1)[0].strip() for line in pytest_options["ini_options"]["markers"]}


def _selects(expression: str, marks: set[str]) -> bool:
    """Whether ``-m expression`` keeps a test carrying ``marks`` (names, and/or/not, parentheses)."""
    names = set(re.findall(r"[A-Za-z_]\w*", expression)) - {"and", "or", "not"}
    return bool(eval(expression, {"__builtins__": {}}, {name: name in marks for name in names}))  # noqa: S307


def test_make_test_runs_every_test() -> None:
    (command,) = [line for line in _recipe("test") if "pytest" in line]
    assert command.endswith("-m pytest"), command  # no -m, -k, --ignore or paths: the whole suite
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]
    assert not re.search(r"(^|\s)(-m|-k|--ignore|--deselect)\b", addopts["ini_options"]["addopts"])


def test_make_check_leaves_out_heavy_slow_and_gpu_and_keeps_the_rest() -> None:
    expression = _check_markers()
    (command,) = [line for line in _recipe("check") if "pytest" in line]
    assert '-m "$(CHECK_MARKERS)"' in command
    used = set(re.findall(r"[A-Za-z_]\w*", expression)) - {"and", "or", "not"}
    assert used <= _registered(), f"unregistered markers in CHECK_MARKERS: {used - _registered()}"
    for marks in ({"heavy"}, {"slow"}, {"gpu"}, {"heavy", "skipif"}, {"slow", "parametrize"}):
        assert not _selects(expression, marks), marks
    for marks in (set(), {"parametrize"}, {"skipif"}):
        assert _selects(expression, marks), marks


def test_only_make_check_thins_the_property_tests(monkeypatch) -> None:
    from tiers import examples

    (check,) = [line for line in _recipe("check") if "pytest" in line]
    (full,) = [line for line in _recipe("test") if "pytest" in line]
    assert "HYBRIDCTX_TEST_TIER=check" in check
    assert "HYBRIDCTX_TEST_TIER" not in full
    monkeypatch.delenv("HYBRIDCTX_TEST_TIER", raising=False)
    assert [examples(n) for n in (15, 200)] == [15, 200]
    monkeypatch.setenv("HYBRIDCTX_TEST_TIER", "check")
    assert [examples(n) for n in (15, 200)] == [10, 40]


def test_every_module_that_needs_heavy_parts_is_marked() -> None:
    heavy, offenders = [], []
    for module in sorted(TESTS.rglob("test_*.py")):
        text = module.read_text(encoding="utf-8")
        sign = HEAVY_SIGNS.search(text)
        if sign is None or module.name == Path(__file__).name:
            continue
        heavy.append(module.name)
        if not MODULE_MARK.search(text):
            offenders.append(f"{module.relative_to(TESTS)} ({sign.group(0)})")
    assert len(heavy) >= 5, heavy  # the signs still find the browser, Postgres, process and LLM modules
    assert offenders == [], f"mark these modules heavy (pytestmark = pytest.mark.heavy): {offenders}"
