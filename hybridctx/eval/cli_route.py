"""hybridctx eval route: the router on QA sets, against always-full and always-retrieve.

Why a command: the router decides from cost estimates alone; this shows, per
question of a QA set and for one model profile and set of limits, the mode it
chose, the tokens, estimated cost and latency, and the evidence recall of what
it sent, beside the two fixed policies, and whether it keeps >= 95% of
always-full's recall for <= 25% of its tokens. Writes ``route.json``,
``route.md`` and ``route.png`` into ``--out`` (see
:mod:`hybridctx.eval.router_eval`). With ``--llm`` the three policies also
answer every question (ask's prompt; the router's answers go through
``answer_question`` itself, so a refused retrieval answer escalates as
Self-Route does) and the answers are scored: ``answers.json``, ``.md``, ``.png``.
"""

from __future__ import annotations

import argparse
import sys

from hybridctx.eval.cli_args import add_data_arguments, add_llm_arguments, answer_llm, progress, quiet_bm25s, resolve_data

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="kimi", metavar="NAME",
                   help="model profile the router costs against (default kimi; e.g. "
                        "qwen2.5-7b-instruct-1m-vllm-h100)")
    p.add_argument("--profiles", default=None, metavar="FILE.toml", help="extra or overriding model profiles")
    p.add_argument("--max-usd", type=float, default=None, metavar="X", help="most money one request may cost")
    p.add_argument("--max-latency-s", type=float, default=None, metavar="S", help="most seconds one request may take")
    p.add_argument("--max-kv-gib", type=float, default=None, metavar="G", help="most KV-cache memory per request")
    p.add_argument("--budget", type=int, default=None, metavar="N",
                   help="retrieval budget the router weighs and always-retrieve uses (default: always-retrieve "
                        "4096; the router its own, 4096 or 20%% of a longer scope, up to 8192)")
    p.add_argument("--min-budget", type=int, default=None, metavar="N")
    p.add_argument("--max-budget", type=int, default=None, metavar="N")
    p.add_argument("--target-recall", type=float, default=0.95, metavar="R",
                   help="share of always-full's recall the router must keep (default 0.95)")
    p.add_argument("--target-tokens", type=float, default=0.15, metavar="T",
                   help="share of always-full's tokens the router may send (default 0.15, issue 14's target)")
    p.add_argument("--adaptive-budget", action="store_true",
                   help="let retrieval's confidence (hybridctx.retrieval.confidence) pick each question's budget between "
                        "0.5x and 1.5x the router's")
    p.add_argument("--escalate-below", type=float, default=None, metavar="C",
                   help="with --adaptive-budget: a confidence below C (0..1) sends full context when it fits")
    p.add_argument("--cached-full-usd-ratio", type=float, default=None, metavar="R",
                   help="a warm or amortised full context counts as cheap at up to R times retrieval's cost "
                        "(RouteLimits.cached_full_usd_ratio, default 1.1)")
    p.add_argument("--session", type=int, default=None, metavar="N",
                   help="a session workload: N questions per document within the cache TTL (the router is "
                        "told so and sees its own full sends as warm; always-full is billed cold once, then "
                        "warm); --limit counts questions in all")
    p.add_argument("--stem", default="route", metavar="NAME", help="file names in --out: NAME.json/.md/.png")
    add_llm_arguments(p)
    add_data_arguments(p, limit=40, out="results/route")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from hybridctx.errors import ConfigError
    from hybridctx.eval.datasets import load_datasets
    from hybridctx.eval.methods import MethodOptions, build_methods
    from hybridctx.eval.router_eval import evaluate_routes
    from hybridctx.routing.profiles import profile_counter
    from hybridctx.routing.router import Router, RouteLimits

    if args.limit < 0:
        raise ConfigError(f"--limit {args.limit} must be >= 0 (0 = every question)")
    if args.budget is not None and args.budget < 1:
        raise ConfigError(f"--budget {args.budget} must be a positive number of tokens")
    for key in ("target_recall", "target_tokens"):
        if not 0 < getattr(args, key) <= 1:
            raise ConfigError(f"--{key.replace('_', '-')} {getattr(args, key)} must be in (0, 1]")
    if args.session is not None and args.session < 1:
        raise ConfigError(f"--session {args.session} must be at least 1 question per document")
    if args.escalate_below is not None and not args.adaptive_budget:
        raise ConfigError("--escalate-below needs --adaptive-budget")
    limits = {"max_usd": args.max_usd, "max_latency_s": args.max_latency_s, "max_kv_gib": args.max_kv_gib,
              "min_budget": args.min_budget, "max_budget": args.max_budget,
              "adaptive_budget": args.adaptive_budget or None, "escalate_below": args.escalate_below,
              "cached_full_usd_ratio": args.cached_full_usd_ratio}
    router = Router(args.profile, RouteLimits.from_mapping({k: v for k, v in limits.items() if v is not None}),
                    profiles_file=args.profiles)
    counter = profile_counter(router.profile)
    if counter.name != router.profile.tokenizer:
        print(f"note: tokenizer {router.profile.tokenizer!r} of {router.profile.name} is not available offline; "
              f"tokens are counted with {counter.name} (approximate)", file=sys.stderr)
    llm = answer_llm(args) if args.llm else None
    quiet_bm25s()
    sets = load_datasets(resolve_data(args), args.datasets, limit=None if args.session else args.limit or None,
                         seed=args.seed, answers=llm is not None)
    if args.session:  # runs of N questions per document (hybridctx.eval.router_eval.pick_sessions)
        from hybridctx.eval.router_eval import pick_sessions

        sets = {n: pick_sessions(s, args.session, args.limit or None, args.seed) for n, s in sets.items()}
    for name, eval_set in sets.items():
        print(f"{name}: {len(eval_set.questions)} questions, {len(eval_set.docs)} documents", file=sys.stderr)
    options = MethodOptions(tokenizer=counter.name, encoder=args.encoder,
                            cache_dir=Path(args.cache) if args.cache else None, show_progress=progress(args))
    (method,) = build_methods(["hybridctx"], options)
    # Routing is judged by the context: with --llm, the questions without context gold are answered only.
    route_sets = sets if llm is None else {
        n: replace(s, questions=tuple(q for q in s.questions if q.has_context_gold)) for n, s in sets.items()}
    report = evaluate_routes(route_sets, router, method, budget=args.budget, counter=counter,
                             min_recall_ratio=args.target_recall, max_token_ratio=args.target_tokens,
                             show_progress=progress(args), session=args.session)
    if args.budget is not None and report.budget != args.budget:
        print(f"note: --budget {args.budget} became {report.budget} (--min-budget/--max-budget and the window "
              f"of {router.profile.name})", file=sys.stderr)
    table = report.write(args.out, stem=args.stem)
    print(report.to_json() if args.json else table, end="\n" if args.json else "")
    print(f"written to {args.out}/{args.stem}.json, {args.stem}.md, {args.stem}.png", file=sys.stderr)
    if llm is not None:
        from hybridctx.eval.answer_eval import evaluate_answers, policies_for_route

        answers = evaluate_answers(sets, llm, policies_for_route(method, router, args.budget), router=router,
                                   max_tokens=args.answer_tokens, profiles_file=args.profiles,
                                   show_progress=progress(args))
        answer_table = answers.write(args.out)
        print(answers.to_json() if args.json else answer_table, end="\n" if args.json else "")
        print(f"written to {args.out}/answers.json, answers.md, answers.png", file=sys.stderr)
    return 0
