"""Score the five peers of DESIGN.md on the six datasets and print the markdown table.

    HF_HUB_OFFLINE=1 python benchmarks/eval_peers.py --limit 100 --out results/peers

Writes ``results.md``, ``results.json`` (both with the command line and commit) and
``recall.png`` into ``--out DIR``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import add_data_argument, add_out_argument, stamp_results  # noqa: E402
from hybridctx.errors import ConfigError  # noqa: E402
from hybridctx.eval.datasets import SIX_DATASETS, load_dataset  # noqa: E402
from hybridctx.eval.methods import DEFAULT_METHODS, MethodOptions, build_methods  # noqa: E402
from hybridctx.eval.runner import DEFAULT_BUDGETS, evaluate  # noqa: E402

PEERS = [m for m in DEFAULT_METHODS if not m.startswith("hybridctx")]  # the five of DESIGN.md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", nargs="+", default=list(SIX_DATASETS), help="dataset directory names")
    parser.add_argument("--limit", type=int, default=100, help="questions per dataset, sampled by --seed; 0: all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(DEFAULT_BUDGETS))
    parser.add_argument("--methods", nargs="+", default=None, help="method names to run (default: the five peers)")
    parser.add_argument("--encoder", default=None, help="encoder path (default: packaged MiniLM)")
    add_out_argument(parser, "results/peers")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import bm25s  # noqa: F401  (it sets its own logger to DEBUG when imported: import it first)

    for noisy in ("bm25s", "jieba", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    sets = {}
    for name in args.datasets:
        sets[name] = load_dataset(args.data / name, limit=args.limit or None, seed=args.seed)
        print(f"{sets[name]!r}: {sum(map(len, sets[name].docs.values())):,} chars", file=sys.stderr)
    options = MethodOptions(encoder=args.encoder, show_progress=False if args.quiet else None)
    try:  # the same names (and aliases) as `hybridctx eval qa --methods`
        peers = build_methods(args.methods or PEERS, options)
    except ConfigError as exc:
        parser.error(str(exc))

    started = time.perf_counter()
    results = evaluate(sets, peers, args.budgets, show_progress=False if args.quiet else None)
    elapsed = time.perf_counter() - started

    table = results.write(args.out)
    stamp_results(args.out, argv)
    print(table)
    for peer in peers:
        prep = sum(p.seconds for p in results.prepare if p.method == peer.name)
        queries = sum(
            c.latency_ms * c.questions for c in results.cells if c.method == peer.name
        ) / 1000
        print(f"{peer.name}: prepare {prep:.0f} s, retrieve {queries:.0f} s")
    print(f"total {elapsed:.0f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
