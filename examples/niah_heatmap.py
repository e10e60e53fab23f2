"""A small needle-in-a-haystack heatmap on the bundled book, in about a minute on a laptop CPU.

    python examples/niah_heatmap.py [--out niah_heatmap] [--variant single|multi|multikey]

Hides a needle sentence in *Alice's Adventures in Wonderland* cut to 2k and
8k tokens, at depths 0%, 50% and 100%, and checks whether hybridctx, BM25 over
chunks and truncation pack the whole needle into a 256-token budget. Writes
``results.json``, ``results.md`` and ``heatmap.png`` under ``--out``. The same
grid from the command line::

    hybridctx eval niah --lengths 2k,8k --depths 0,50,100 --budget 256 --out niah_heatmap
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hybridctx.eval.haystack import load_haystack  # noqa: E402
from hybridctx.eval.niah import NIAHConfig, make_methods, run_niah  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("niah_heatmap"), help="output directory")
    parser.add_argument("--variant", default="single", choices=["single", "multi", "multikey"])
    parser.add_argument("--budget", type=int, default=256, help="tokens each method may pack")
    args = parser.parse_args(argv)

    haystack = load_haystack("alice")  # the shipped public-domain book
    config = NIAHConfig(lengths=(2000, 8000), depths=(0.0, 50.0, 100.0), variant=args.variant, budget=args.budget)
    methods = make_methods(["hybridctx", "bm25", "truncation"])
    results = run_niah(haystack, config, methods)
    print(results.table())
    for trial in results.trials[:1]:
        print(f"question: {trial.question}\nneedle:   {trial.needles[0].needle.text}\n")
    paths = results.write(args.out)
    print(f"heatmap: {paths['heatmap']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
