"""Score hybridctx variants (encoder pooling/context, search mode, span growth)
on the shared QA sets with the DESIGN.md scoring, optionally beside the peers.

    HF_HUB_OFFLINE=1 python benchmarks/eval_variants.py --datasets leval locomo hotpotqa \
        --variants isolated window mix --limit 60 --out results/encoders

Writes ``results.md``, ``results.json`` (both with the command line and commit) and
``recall.png`` into ``--out DIR``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import add_data_argument, add_out_argument, command_line, stamp_results  # noqa: E402
from hybridctx.errors import ConfigError  # noqa: E402
from hybridctx.eval.datasets import SIX_DATASETS, load_dataset  # noqa: E402
from hybridctx.eval.methods import ENCODERS, MethodOptions, variant_methods  # noqa: E402
from hybridctx.eval.runner import DEFAULT_BUDGETS, evaluate  # noqa: E402
from hybridctx.retrieval.retriever import RetrievalConfig  # noqa: E402

# The variants themselves (ENCODERS, RETRIEVAL) live in hybridctx/eval/methods.py, shared with
# `hybridctx eval qa --methods hx-NAME`.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", nargs="+", default=list(SIX_DATASETS))
    parser.add_argument("--variants", nargs="+", default=["isolated", "window", "mix"])
    parser.add_argument("--base-encoder", default="window", choices=sorted(ENCODERS))
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(DEFAULT_BUDGETS))
    add_out_argument(parser, "results/variants")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--cache", type=Path, default=None, help="keep built indexes here and reuse them")
    parser.add_argument("--dense-too", action="store_true", help="also score each encoder variant in dense-only mode")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    progress = False if args.quiet else None
    sets = {name: load_dataset(args.data / name, limit=args.limit or None, seed=args.seed) for name in args.datasets}
    for name, s in sets.items():
        print(f"{name}: {len(s.questions)} questions, {len(s.docs)} docs, "
              f"{sum(map(len, s.docs.values())):,} chars", file=sys.stderr)
    options = MethodOptions(cache_dir=args.cache, show_progress=progress)
    try:
        methods = variant_methods(args.variants, base_encoder=args.base_encoder, base=RetrievalConfig(),
                                  options=options, dense_too=args.dense_too)
    except ConfigError as exc:
        parser.error(str(exc))
    started = time.perf_counter()
    results = evaluate(sets, methods, args.budgets, show_progress=progress)
    table = results.write(args.out)
    stamp_results(args.out, argv)
    print(table)
    print(f"\n{time.perf_counter() - started:.0f} s; command: {command_line(argv)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
