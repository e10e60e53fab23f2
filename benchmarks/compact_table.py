"""Merge one or more ``results.json`` files of the eval scripts into one compact
markdown table: one row per method, one column per dataset with the scores at
each budget (``512/1k/2k/4k``), and the average over datasets.

    python benchmarks/compact_table.py results/peers/results.json results/final/results.json [--out DIR]

With ``--out DIR`` the table is also written to ``DIR/compact_table.json`` with the
command line and commit (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import add_out_argument, print_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="RESULTS_JSON", help="results.json files of eval runs")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    print_table(render(args.paths), args.out, "compact_table.json", args.paths, argv)
    return 0


def render(paths: list[str]) -> str:
    """The markdown table of the cells in ``paths``."""
    cells: dict[tuple[str, str, int], float] = {}
    methods: list[str] = []
    datasets: list[str] = []
    budgets: list[int] = []
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        for m in data["methods"]:
            if m not in methods:
                methods.append(m)
        for d in data["datasets"]:
            if d not in datasets:
                datasets.append(d)
        budgets = budgets or list(data["budgets"])
        for c in data["cells"]:
            cells[(c["method"], c["dataset"], c["budget"])] = c["score"]
    lines = ["| method | " + " | ".join(datasets) + " | average |", "| --- |" + " ---: |" * (len(datasets) + 1)]
    for m in methods:
        row = []
        for d in datasets:
            row.append("/".join(f"{cells[(m, d, b)]:.2f}" if (m, d, b) in cells else "–" for b in budgets))
        avgs = []
        for b in budgets:
            vals = [cells[(m, d, b)] for d in datasets if (m, d, b) in cells]
            avgs.append(f"{sum(vals) / len(vals):.3f}" if len(vals) == len(datasets) else "–")
        lines.append(f"| {m} | " + " | ".join(row) + " | " + "/".join(avgs) + " |")
    lines.append(f"\nScores at budgets {'/'.join(str(b) for b in budgets)} tokens (cl100k_base).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
