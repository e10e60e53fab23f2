"""Every script in benchmarks/ keeps the one convention of benchmarks/README.md.

Why: twelve-odd scripts written over many sessions drifted (an absolute ``--data`` default that
existed on one machine, ``--out`` a file in some and a folder in others, the command that made a
result recorded by two of them). The convention lives in ``benchmarks/_common.py``; these tests
check that each script uses it (read from its source, no script run) and that ``_common`` writes
what it promises; one heavy test runs every script's ``--help``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
# What a script that reads the shared evaluation data calls or names.
READS_DATA = {"load_dataset", "load_datasets", "load_haystack", "docs.jsonl", "qa.jsonl"}
WRITERS = {"write_result", "write_rows", "stamp_results", "figure_metadata", "provenance", "print_table"}
MACHINE_PATH = re.compile(r"^/(work|home|root|tmp|Users|mnt|data|srv|opt)(/|$)")


def _common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_common", BENCHMARKS / "_common.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _names(tree: ast.AST) -> tuple[set[str], set[str], list[str]]:
    """(names called or referenced, names imported from _common, string constants) of a script."""
    used, imported, strings = set(), set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            used.update(a.name for a in node.names)
            if node.module == "_common":
                imported.update(a.name for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node.value)
    return used, imported, strings


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 12, [p.name for p in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_uses_the_convention(script: Path) -> None:
    source = script.read_text(encoding="utf-8")
    used, imported, strings = _names(ast.parse(source))
    assert "add_out_argument" in imported, f"{script.name}: --out DIR comes from _common.add_out_argument"
    assert imported & WRITERS, f"{script.name}: results are written through _common ({sorted(WRITERS)})"
    reads_data = bool(READS_DATA & (used | set(strings)))
    if reads_data:
        assert "add_data_argument" in imported, f"{script.name} reads the shared data: --data from _common"
    for text in strings:
        assert not MACHINE_PATH.match(text), f"{script.name}: {text!r} is a path of one machine"
    assert "parents[2]" not in source, f"{script.name}: the data's place is _common.DEFAULT_DATA"
    for pattern in ("args.out.parent", "args.out.write_text", "open(args.out", "args.out.with_suffix"):
        assert pattern not in source, f"{script.name}: --out is a directory, not a file ({pattern})"
    for pattern in (r'"--out"', r'"--data"'):
        assert not re.search(rf"add_argument\({pattern}", source), \
            f"{script.name} declares {pattern} itself instead of through _common"


def test_default_data_is_beside_the_repository_from_this_checkout() -> None:
    common = _common()
    assert common.DEFAULT_DATA == ROOT.parent / "shared" / "data"
    assert common.ROOT == ROOT


def test_write_result_records_command_commit_and_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common = _common()
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / "store_latency.py"), "--n", "10", "--out", "x y"])
    path = common.write_result(tmp_path / "made", "r.json", {"rows": [1, 2], "command": "stale"})
    record = json.loads(path.read_text(encoding="utf-8"))
    assert path == tmp_path / "made" / "r.json"
    assert record["command"] == "python benchmarks/store_latency.py --n 10 --out 'x y'"  # pasteable
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert record["commit"] == head.stdout.strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record["date"])
    assert record["rows"] == [1, 2] and list(record)[:3] == ["command", "commit", "dirty"]
    assert common.command_line(["--only", "a"]) == "python benchmarks/store_latency.py --only a"


def test_rows_and_eval_results_carry_the_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common = _common()
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / "eval_peers.py"), "--limit", "2"])
    with common.write_rows(tmp_path, "rows.jsonl") as out:
        out.write(json.dumps({"id": 1}) + "\n")
    first, row = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text(encoding="utf-8").splitlines()]
    assert first["provenance"]["command"] == "python benchmarks/eval_peers.py --limit 2" and row == {"id": 1}
    (tmp_path / "results.json").write_text(json.dumps({"methods": ["m"]}), encoding="utf-8")
    (tmp_path / "results.md").write_text("| table |\n", encoding="utf-8")
    common.stamp_results(tmp_path)
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert data["methods"] == ["m"] and data["provenance"]["command"].endswith("--limit 2")
    assert (tmp_path / "results.md").read_text(encoding="utf-8").splitlines()[-1].startswith(
        "Made by `python benchmarks/eval_peers.py --limit 2` at commit ")
    assert common.figure_metadata()["Description"] == "python benchmarks/eval_peers.py --limit 2"


def test_the_readme_names_every_script() -> None:
    readme = (BENCHMARKS / "README.md").read_text(encoding="utf-8")
    for script in SCRIPTS:
        assert f"`{script.name}`" in readme, f"benchmarks/README.md does not list {script.name}"


@pytest.mark.heavy  # one child process per script
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_shows_out_dir_and_data_dir(script: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"--out DIR\b", done.stdout), done.stdout
    used, _, strings = _names(ast.parse(script.read_text(encoding="utf-8")))
    if READS_DATA & (used | set(strings)):
        assert re.search(r"--data DIR\b", done.stdout) and "../shared/data" in done.stdout, done.stdout
