"""The encoder-training table of docs/encoders.md, and the default-model decision rule, from eval results.

Each argument is ``LABEL=DIR`` where DIR holds the ``results.json`` of one
``hybridctx eval qa --methods hybridctx-dense,hybridctx`` run (one encoder);
the first is the baseline. Prints one row per encoder and mode with the scores
at 512/1k/2k/4k per set, the dense average over the sets at 1k-4k, and for each
later encoder whether it passes the rule of issue 12: dense-only average at
1k-4k at least 5 points above the baseline, and hybrid nowhere lower by more
than one question.

    python benchmarks/train_table.py minilm=/tmp/grid/results/minilm trained=/tmp/grid/results/sup [--out DIR]

``--out DIR`` also writes the table and the verdicts to ``DIR/train_table.json`` with the
command line and commit.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from _common import add_out_argument, print_table

MODES = (("dense", "hybridctx-dense"), ("hybrid", "hybridctx"))


def _load(path: str) -> dict:
    """An eval folder, or its results.json (gzipped or not: docs/results keeps them gzipped)."""
    where = Path(path)
    where = where / "results.json" if where.is_dir() else where
    raw = gzip.decompress(where.read_bytes()) if where.suffix == ".gz" else where.read_bytes()
    data = json.loads(raw.decode("utf-8"))
    cells = {(c["method"], c["dataset"], c["budget"]): c for c in data["cells"]}
    return {"datasets": data["datasets"], "budgets": data["budgets"], "cells": cells}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=DIR", help="eval results folders; the first is the baseline")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    print_table("\n".join(table(args.runs)), args.out, "train_table.json", args.runs, argv)
    return 0


def table(labelled: list[str]) -> list[str]:
    """The table's lines, then one verdict line per encoder after the baseline."""
    out: list[str] = []
    runs = [(a.split("=", 1)[0], _load(a.split("=", 1)[1])) for a in labelled]
    datasets, budgets = runs[0][1]["datasets"], runs[0][1]["budgets"]
    upper = [b for b in budgets if b >= 1024]
    head = ["encoder", "mode", *datasets, "dense avg 1k-4k" if upper else "avg"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * 2 + "---:|" * (len(head) - 2))
    averages: dict[str, float] = {}
    for label, run in runs:
        for mode, method in MODES:
            cols = []
            for d in datasets:
                cols.append("/".join(f"{run['cells'][(method, d, b)]['score']:.2f}" for b in budgets))
            avg = sum(run["cells"][(method, d, b)]["score"] for d in datasets for b in upper) / (len(datasets) * len(upper))
            if mode == "dense":
                averages[label] = avg
            out.append(f"| {label} | {mode} | " + " | ".join(cols) + f" | {avg:.3f} |")
    base_label, base = runs[0]
    for label, run in runs[1:]:
        gain = averages[label] - averages[base_label]
        worst = 0.0
        for d in datasets:
            for b in budgets:
                c, r = base["cells"][("hybridctx", d, b)], run["cells"][("hybridctx", d, b)]
                worst = max(worst, (c["score"] - r["score"]) * c["questions"])
        ok = gain >= 0.05 and worst <= 1.0
        out.append(f"\n{label} vs {base_label}: dense 1k-4k average {gain * 100:+.2f} points; hybrid at most "
              f"{worst:.1f} question(s) lower in any cell -> {'PASSES' if ok else 'does not pass'} the default rule")
    return out


if __name__ == "__main__":
    sys.exit(main())
