"""What every benchmark shares: where the data is, where results go, and what made them.

Why: a number in docs/benchmarks.md is only worth keeping if its file says how to make it again,
and a script is only easy to rerun if it takes its paths the way the others do. So every script
here reads the shared evaluation data from ``--data DIR`` (default ``../shared/data`` beside the
repository, found from this file's own path, so it works from any working directory and never
names a path of one machine), writes into ``--out DIR`` (always a directory; the file names are
the script's), and writes each result through :func:`write_result` (JSON), :func:`write_rows`
(JSON lines) or :func:`stamp_results` (the ``results.json``/``results.md`` of the eval harness),
which record the command line, the git commit and the date. See benchmarks/README.md.

Standard library only: ``--help`` must work before anything heavy is installed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"

__all__ = ["DEFAULT_DATA", "ROOT", "add_data_argument", "add_out_argument", "command_line", "figure_metadata",
           "print_table", "provenance", "stamp_results", "write_result", "write_rows"]


def add_data_argument(parser: argparse.ArgumentParser, help: str = "the shared evaluation data") -> None:
    """``--data DIR``, default ``../shared/data`` beside the repository."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                        help=f"{help} (default: ../shared/data beside the repository)")


def add_out_argument(parser: argparse.ArgumentParser, default: str | Path | None = None, *,
                     required: bool = False, help: str = "write the results into this directory") -> None:
    """``--out DIR``: always a directory, made when missing."""
    shown = "" if required else f" (default: {default})" if default is not None else " (default: print only)"
    parser.add_argument("--out", type=Path, default=None if default is None else Path(default), metavar="DIR",
                        required=required, help=help + shown)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that is running, as one line to paste: ``python benchmarks/NAME.py ARGS``."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = script.relative_to(ROOT).as_posix()
    except ValueError:
        shown = script.name
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", shown, *args])


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``{"command", "commit", "dirty", "date"}``: what made a result, to make it again."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"command": command_line(argv), "commit": commit or "unknown",
            "dirty": bool(status) if status is not None else None,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def write_result(out_dir: str | Path, name: str, payload: dict[str, Any],
                 argv: Sequence[str] | None = None) -> Path:
    """Write ``payload`` as ``out_dir/name`` (JSON), the provenance first; returns the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    record = {**provenance(argv), **{k: v for k, v in payload.items() if k != "command"}}
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def print_table(table: str, out_dir: str | Path | None, name: str, inputs: Sequence[str],
                argv: Sequence[str] | None = None) -> None:
    """Print a table made from result files; with ``out_dir``, also write it with its inputs as ``name``."""
    print(table)
    if out_dir is not None:
        write_result(out_dir, name, {"inputs": list(inputs), "table": table}, argv)


@contextmanager
def write_rows(out_dir: str | Path, name: str, argv: Sequence[str] | None = None) -> Iterator[IO[str]]:
    """A JSON-lines file ``out_dir/name`` whose first line is ``{"provenance": {...}}``; one row a line after."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / name, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"provenance": provenance(argv)}) + "\n")
        yield handle


def stamp_results(out_dir: str | Path, argv: Sequence[str] | None = None) -> None:
    """Add the provenance to the ``results.json`` and ``results.md`` that ``EvalResults.write`` made."""
    out = Path(out_dir)
    facts = provenance(argv)
    json_path, md_path = out / "results.json", out / "results.md"
    if json_path.is_file():
        data = json.loads(json_path.read_text(encoding="utf-8"))
        json_path.write_text(json.dumps({"provenance": facts, **data}, indent=1, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    if md_path.is_file():
        text = md_path.read_text(encoding="utf-8").rstrip("\n")
        md_path.write_text(f"{text}\n\nMade by `{facts['command']}` at commit {facts['commit'][:12]}"
                           f"{' (with uncommitted changes)' if facts['dirty'] else ''}, {facts['date']}.\n",
                           encoding="utf-8")


def figure_metadata(argv: Sequence[str] | None = None) -> dict[str, str]:
    """PNG text chunks for ``savefig(metadata=...)``: the same provenance inside the picture."""
    facts = provenance(argv)
    return {"Description": facts["command"], "Source": f"hybridctx commit {facts['commit']}",
            "Creation Time": facts["date"]}
