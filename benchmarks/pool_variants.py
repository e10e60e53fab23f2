"""Pool eval ``results.json`` files (one per sample seed) into one table, a set with several
tasks split by task, and count the questions each method loses and gains against another.

    python benchmarks/pool_variants.py docs/results/window_end_seed{0,1,2}.json \\
        --pair hx-trim:hx-window --pair hx-trim-dense:hx-window-dense [--out DIR]

Why: one 40-question sample moves a cell by one question (2.5 points), so a change is judged
over several samples, pooled by question; and L-Eval's contract clauses and topic questions
behave nothing alike (DESIGN.md), so a set whose ``qa.jsonl`` gives a ``task`` per question is
split by it. A cell is ``dataset`` or ``dataset/task``; its pooled score is the mean over every
question of every file (the counts are in the header). ``--pair NEW:OLD`` adds, for NEW, the
questions lost and gained against OLD: each cell's change in questions (its summed per-question
score change over every file), the falls added up and the rises added up, and the worst cell.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from _common import add_data_argument, add_out_argument, print_table

Cell = tuple[str, int]  # (dataset or dataset/task, budget)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="RESULTS_JSON", help="results.json files, one per seed")
    parser.add_argument("--pair", action="append", default=[], metavar="NEW:OLD",
                        help="count the questions NEW loses and gains against OLD (repeatable)")
    add_data_argument(parser, "the shared evaluation data (for each question's task)")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    pairs = []
    for pair in args.pair:
        new, sep, old = pair.partition(":")
        if not (sep and new and old):
            parser.error(f"--pair {pair!r} is not NEW:OLD")
        pairs.append((new, old))
    runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.paths]
    tasks = task_of(args.data, {d for run in runs for d in run["datasets"]})
    print_table(render(runs, tasks, pairs), args.out, "pool_variants.json", args.paths, argv)
    return 0


def task_of(data: Path, datasets: Iterable[str]) -> dict[str, str]:
    """``question id -> task`` for the sets whose questions carry more than one task."""
    out: dict[str, str] = {}
    for name in datasets:
        path = data / name / "qa.jsonl"
        if not path.exists():
            continue
        found = {}
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if isinstance(record.get("task"), str):
                    found[str(record["id"])] = record["task"]
        if len(set(found.values())) > 1:
            out.update(found)
    return out


def scores_by_question(runs: list[dict[str, Any]], tasks: dict[str, str]) -> dict[str, dict[tuple[int, str, Cell], float]]:
    """``method -> {(file index, question id, cell): score}``."""
    out: dict[str, dict[tuple[int, str, Cell], float]] = defaultdict(dict)
    for i, run in enumerate(runs):
        for row in run["rows"]:
            task = tasks.get(str(row["id"]))
            where = f"{row['dataset']}/{task}" if task else row["dataset"]
            out[row["method"]][(i, str(row["id"]), (where, int(row["budget"])))] = float(row["score"])
    return out


def render(runs: list[dict[str, Any]], tasks: dict[str, str], pairs: list[tuple[str, str]]) -> str:
    """The pooled table: one row per method, one column per cell group, scores at each budget."""
    scores = scores_by_question(runs, tasks)
    methods = list(dict.fromkeys(m for run in runs for m in run["methods"] if m in scores))
    budgets = sorted({cell[1] for by in scores.values() for _, _, cell in by})
    places = list(dict.fromkeys(cell[0] for m in methods for _, _, cell in scores[m]))
    places.sort(key=lambda p: (p.split("/")[0], p))
    counts = {p: len({(i, q) for (i, q, c) in scores[methods[0]] if c[0] == p}) for p in places}
    head = " | ".join(f"{p} ({counts[p]})" for p in places)
    lines = [f"| method | {head} | questions lost / gained (worst cell) |", "| --- |" + " --- |" * (len(places) + 1)]
    against = dict(pairs)
    for method in methods:
        by = scores[method]
        row = []
        for place in places:
            parts = []
            for budget in budgets:
                vals = [s for (_, _, c), s in by.items() if c == (place, budget)]
                parts.append(f"{sum(vals) / len(vals):.3f}" if vals else "–")
            row.append("/".join(parts))
        lines.append(f"| {method} | " + " | ".join(row) + f" | {_changes(by, scores.get(against.get(method, '')))} |")
    files = len(runs)
    lines.append(f"\nPooled over {files} file{'s' if files > 1 else ''}; scores at budgets "
                 f"{'/'.join(str(b) for b in budgets)} tokens; (n): questions per budget over all files.")
    return "\n".join(lines)


def _changes(new: dict[tuple[int, str, Cell], float], old: dict[tuple[int, str, Cell], float] | None) -> str:
    if not old:
        return ""
    by_cell: dict[Cell, float] = defaultdict(float)
    for key, score in new.items():
        if key in old:
            by_cell[key[2]] += score - old[key]
    if not by_cell:
        return "no common questions"
    lost = sum(max(0.0, -d) for d in by_cell.values())
    gained = sum(max(0.0, d) for d in by_cell.values())
    (place, budget), worst = min(by_cell.items(), key=lambda kv: kv[1])
    shown = f"{worst:+.1f}, {place}@{budget}" if worst < 0 else "none lower"
    return f"{lost:.1f} / {gained:.1f} ({shown})"


if __name__ == "__main__":
    sys.exit(main())
