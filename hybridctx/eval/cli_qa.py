"""hybridctx eval qa: evidence recall of hybridctx and its peers on QA sets, per token budget.

Why a command: the retrieval-quality numbers of docs/benchmarks.md should be
one command away, on the shared data or on a user's own ``docs.jsonl`` +
``qa.jsonl``, with every method scored by the same loop
(:func:`hybridctx.eval.runner.evaluate`) and the same rules (DESIGN.md).
Writes ``results.json`` (every cell and every question), ``results.md`` and
``recall_vs_budget.png`` into ``--out``. With ``--llm`` it also answers every
question with each method's context at each budget (ask's prompt) and scores
the answers (:mod:`hybridctx.eval.answer_eval`): ``answers.json``,
``answers.md`` and ``answers.png`` (F1 against dollars).
"""

from __future__ import annotations

import argparse
import sys

from hybridctx.eval.cli_args import (add_data_arguments, add_llm_arguments, answer_llm, int_list, name_list, progress,
                                     quiet_bm25s, resolve_data)

__all__ = ["DEFAULT_METHODS_ARG", "add_arguments", "run"]

DEFAULT_METHODS_ARG = ("hybridctx,llamaindex-chunks-256,llamaindex-chunks-512,llamaindex-window-3,"
                       "bm25-chunks-256,truncation")  # as hybridctx.eval.methods.DEFAULT_METHODS, without importing it


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--methods", type=name_list, default=None, metavar="A,B",
                   help=f"methods side by side (default {DEFAULT_METHODS_ARG}); aliases llamaindex-256, "
                        "llamaindex-512, sentence-window, bm25-256; also hybridctx-dense, hybridctx-lexical "
                        "and the hx-* variants of benchmarks/eval_variants.py")
    p.add_argument("--budgets", type=int_list, default=None, metavar="N,N",
                   help="token budgets (default 512,1024,2048,4096; with --llm 1024)")
    p.add_argument("--tokenizer", default="cl100k_base", metavar="NAME",
                   help="tokenizer budgets are counted in: cl100k_base, o200k_base or a tokenizer.json")
    p.add_argument("--profile", default="kimi", metavar="NAME",
                   help="with --llm: the model profile whose prices the answers' tokens are charged at (default kimi)")
    p.add_argument("--profiles", default=None, metavar="FILE.toml", help="extra or overriding model profiles")
    add_llm_arguments(p)
    add_data_arguments(p, limit=40, out="results/qa")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hybridctx.errors import ConfigError
    from hybridctx.eval.datasets import load_datasets
    from hybridctx.eval.methods import MethodOptions, build_methods, canonical_name
    from hybridctx.eval.runner import evaluate

    if args.limit < 0:
        raise ConfigError(f"--limit {args.limit} must be >= 0 (0 = every question)")
    names = args.methods or (["hybridctx"] if args.llm else DEFAULT_METHODS_ARG.split(","))
    for name in names:  # fail on a typo before minutes of loading
        canonical_name(name)
    budgets = args.budgets or ([1024] if args.llm else [512, 1024, 2048, 4096])
    if args.llm:
        return _answers(args, names, budgets)
    quiet_bm25s()
    sets = load_datasets(resolve_data(args), args.datasets, limit=args.limit or None, seed=args.seed)
    for name, eval_set in sets.items():
        print(f"{name}: {len(eval_set.questions)} questions, {len(eval_set.docs)} documents, "
              f"{sum(map(len, eval_set.docs.values())):,} chars", file=sys.stderr)
    options = MethodOptions(tokenizer=args.tokenizer, encoder=args.encoder,
                            cache_dir=Path(args.cache) if args.cache else None, show_progress=progress(args))
    methods = build_methods(names, options)
    results = evaluate(sets, methods, budgets, tokenizer=args.tokenizer, show_progress=progress(args))
    results.write(args.out, plot_name="recall_vs_budget.png", detail=True)
    print(results.to_json() if args.json else results.to_markdown(), end="\n" if args.json else "")
    print(f"written to {args.out}/results.json, results.md, recall_vs_budget.png", file=sys.stderr)
    return 0


def _answers(args: argparse.Namespace, names: list[str], budgets: list[int]) -> int:
    """``--llm``: answer with each method's context at each budget; score the answers."""
    from pathlib import Path

    from hybridctx.eval.answer_eval import evaluate_answers, policies_for_methods
    from hybridctx.eval.datasets import load_datasets
    from hybridctx.eval.methods import MethodOptions, build_methods
    from hybridctx.routing.router import Router

    router = Router(args.profile, profiles_file=args.profiles)
    llm = answer_llm(args)
    quiet_bm25s()
    sets = load_datasets(resolve_data(args), args.datasets, limit=args.limit or None, seed=args.seed, answers=True)
    for name, eval_set in sets.items():
        print(f"{name}: {len(eval_set.questions)} questions with gold answers, {len(eval_set.docs)} documents",
              file=sys.stderr)
    options = MethodOptions(tokenizer=args.tokenizer, encoder=args.encoder,
                            cache_dir=Path(args.cache) if args.cache else None, show_progress=progress(args))
    policies = policies_for_methods(build_methods(names, options), budgets)
    report = evaluate_answers(sets, llm, policies, router=router, max_tokens=args.answer_tokens,
                              profiles_file=args.profiles, show_progress=progress(args))
    table = report.write(args.out)
    print(report.to_json() if args.json else table, end="\n" if args.json else "")
    print(f"written to {args.out}/answers.json, answers.md, answers.png", file=sys.stderr)
    return 0
