"""Score hybridctx variants (encoder pooling/context, search mode, span growth)
on the shared QA sets with the DESIGN.md scoring, optionally beside the peers.

    HF_HUB_OFFLINE=1 python benchmarks/eval_variants.py --datasets leval locomo hotpotqa \
        --variants isolated window mix --limit 60 --out results/encoders

Writes ``results.md``, ``results.json`` and ``recall.png`` under ``--out``.
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

from hybridctx.eval.datasets import SIX_DATASETS, load_dataset  # noqa: E402
from hybridctx.eval.hybrid_method import HybridCtxMethod  # noqa: E402
from hybridctx.eval.runner import DEFAULT_BUDGETS, evaluate  # noqa: E402
from hybridctx.retrieval import RetrievalConfig  # noqa: E402
from hybridctx.spans import GrowthRule  # noqa: E402

# Encoder variants: each needs its own encoding pass.
ENCODERS = {
    "isolated": {"context": "isolated"},
    "window": {"context": "window"},
    "window512": {"context": "window", "window": 512, "overlap": 128},
    "window-ov32": {"context": "window", "overlap": 32},
    "mix": {"context": "mix", "mix_weight": 0.5},
    "mix30": {"context": "mix", "mix_weight": 0.3},
    "landmark": {"context": "window", "pooling": "landmark"},
}
# Retrieval variants on the default encoder: share its index.
RETRIEVAL = {
    "dense": {"mode": "dense"},
    "lexical": {"mode": "lexical"},
    "hybrid": {"mode": "hybrid"},
    "grow0": {"growth": GrowthRule(back=0, forward=0)},
    "grow2-1": {"growth": GrowthRule(back=2, forward=1)},
    "grow3-1": {"growth": GrowthRule(back=3, forward=1)},
    "grow5-1": {"growth": GrowthRule(back=5, forward=1)},
    "grow3-3": {"growth": GrowthRule(back=3, forward=3)},
    "grow4-2": {"growth": GrowthRule(back=4, forward=2)},
    "grow6-3": {"growth": GrowthRule(back=6, forward=3)},
    "lex2": {"lexical_weight": 2.0},
    "dense15": {"dense_weight": 1.5},
    "rrf20": {"rrf_k": 20.0},
    "cand200": {"candidates": 200},
    "lexsent": {"lexical_context": (0, 0)},
    "sup0": {"growth": GrowthRule(back=3, forward=1, support=0.0), "lexical_context": (0, 0)},
    "sup0-21": {"growth": GrowthRule(back=2, forward=1, support=0.0), "lexical_context": (0, 0)},
    "sup0-10": {"growth": GrowthRule(back=1, forward=0, support=0.0), "lexical_context": (0, 0)},
    "sup0-ctx": {"growth": GrowthRule(back=3, forward=1, support=0.0)},
    "cap25": {"growth": GrowthRule(back=3, forward=1, support=0.0), "max_span_share": 0.25},
    "cap50": {"growth": GrowthRule(back=3, forward=1, support=0.0), "max_span_share": 0.5},
    "cap100": {"growth": GrowthRule(back=3, forward=1, support=0.0), "max_span_share": None},
    "cap35-sent": {"growth": GrowthRule(back=3, forward=1, support=0.0), "max_span_share": 0.35,
                   "lexical_context": (0, 0)},
    "sup0-rrf10": {"growth": GrowthRule(back=3, forward=1, support=0.0), "lexical_context": (0, 0), "rrf_k": 10.0},
    "lexctx11": {"lexical_context": (1, 1)},
    "lexctx31": {"lexical_context": (3, 1)},
    "lexctx53": {"lexical_context": (5, 3)},
    "lexctx31w1": {"lexical_context": (3, 1), "lexical_neighbour_weight": 1.0},
    "dense2": {"dense_weight": 2.0},
}


def build_methods(names: list[str], base_encoder: str, base: RetrievalConfig, progress: bool | None,
                  dense_too: bool = False, cache_dir: Path | None = None) -> list:
    methods = []
    shared = {}
    for name in names:
        if name in ENCODERS:
            method = HybridCtxMethod(f"hx-{name}", encoder=ENCODERS[name], config=base, show_progress=progress,
                                     cache_dir=cache_dir)
            methods.append(method)
            if dense_too:  # the encoder alone, on the same index
                methods.append(method.with_config(f"hx-{name}-dense", mode="dense"))
        elif name in RETRIEVAL:
            if "base" not in shared:
                shared["base"] = HybridCtxMethod("hx-base", encoder=ENCODERS[base_encoder], config=base,
                                                 show_progress=progress, cache_dir=cache_dir)
            methods.append(shared["base"].with_config(f"hx-{name}", **RETRIEVAL[name]))
        elif name.startswith("peer:"):
            from hybridctx.eval.peers import default_peers

            methods.extend(p for p in default_peers(None, show_progress=progress) if p.name == name[5:])
        else:
            raise SystemExit(f"unknown variant {name!r}; known: {sorted(ENCODERS) + sorted(RETRIEVAL)} or peer:NAME")
    return methods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--datasets", nargs="+", default=list(SIX_DATASETS))
    parser.add_argument("--variants", nargs="+", default=["isolated", "window", "mix"])
    parser.add_argument("--base-encoder", default="window", choices=sorted(ENCODERS))
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(DEFAULT_BUDGETS))
    parser.add_argument("--out", type=Path, default=Path("results/variants"))
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
    methods = build_methods(args.variants, args.base_encoder, RetrievalConfig(), progress, args.dense_too, args.cache)
    started = time.perf_counter()
    results = evaluate(sets, methods, args.budgets, show_progress=progress)
    table = results.write(args.out)
    print(table)
    print(f"\n{time.perf_counter() - started:.0f} s; command: python benchmarks/eval_variants.py "
          f"{' '.join(sys.argv[1:] if argv is None else argv)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
