"""Retrieval confidence against the budget a question needs (issue 14, part 3).

Why: ``hybridctx.retrieval.confidence`` maps its score to a budget between 0.5x and 1.5x the
router's; whether that buys recall per token shows only against the recall each
question gets at each budget. This writes, per question, the confidence signals
and the evidence recall at 0.5x, 0.75x, 1x, 1.25x and 1.5x the router's budget,
so mappings can be compared without re-running retrieval:

    python benchmarks/confidence_budget.py --cache results/cache --out results/i14

It writes ``OUT/confidence_budget.jsonl``: a ``{"provenance": ...}`` line (command, commit,
date), then one question a line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import add_data_argument, add_out_argument, write_rows

SHARES = (0.5, 0.75, 1.0, 1.25, 1.5)


def main() -> None:
    from hybridctx.retrieval.confidence import budget_range, measure
    from hybridctx.eval.datasets import load_datasets
    from hybridctx.eval.methods import MethodOptions, build_methods
    from hybridctx.eval.scoring import score_question
    from hybridctx.routing.profiles import profile_counter
    from hybridctx.routing.router import RouteLimits, Router
    from hybridctx.packing.tokens import count_many

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(ap)
    ap.add_argument("--datasets", default="locomo,leval,hotpotqa")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--profile", default="kimi")
    add_out_argument(ap, required=True)
    args = ap.parse_args()
    router = Router(args.profile, RouteLimits(adaptive_budget=True))
    counter = profile_counter(router.profile)
    sets = load_datasets(args.data, args.datasets.split(","), limit=args.limit, seed=0)
    (method,) = build_methods(["hybridctx"], MethodOptions(tokenizer=counter.name, cache_dir=Path(args.cache)
                                                           if args.cache else None, show_progress=False))
    with write_rows(args.out, "confidence_budget.jsonl") as out:
        for name, eval_set in sets.items():
            method.prepare(eval_set.docs)
            docs = eval_set.docs
            tokens = dict(zip(docs, count_many(counter, list(docs.values()))))
            for item in eval_set.questions:
                doc_ids = eval_set.doc_ids_for(item)
                full = sum(tokens[d] for d in (list(docs) if doc_ids is None else doc_ids))
                decision = router.decide(item.question, full)
                lo, hi = budget_range(router, decision.budget)
                signals = method.signals(item.question, doc_ids, hi)
                texts = [docs[d][a:b] for d, a, b in method.retrieve(item.question, doc_ids, lo)]
                conf = measure(item.question, signals, texts)
                recall = {}
                for share in SHARES:
                    b = max(1, round(decision.budget * share))
                    recall[str(share)] = score_question(item, method.retrieve(item.question, doc_ids, b), docs)
                out.write(json.dumps({"dataset": name, "id": item.id, "mode": decision.mode, "budget": decision.budget,
                                      "full_tokens": full, **conf.to_json(), "recall": recall}) + "\n")
                out.flush()


if __name__ == "__main__":
    main()
