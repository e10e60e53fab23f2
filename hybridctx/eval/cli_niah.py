"""hybridctx eval niah: needle in a haystack over a grid of lengths and depths, scored by what is packed.

Why a module: the ``eval niah`` arguments and their checks live beside the
command, and the heavy parts (encoder, tokenizers, matplotlib) load only when
it runs. Bad values exit with code 2 and one line naming the value.
"""

from __future__ import annotations

import argparse

DEFAULT_LENGTHS = {"tokens": "2k,8k,32k", "chars": "8k,32k,128k"}
DEFAULT_DEPTHS = "0,10,...,100"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--haystack", default="alice", metavar="DIR",
                   help="directory of .txt/.md files (or one file), or a shipped haystack: alice (default), xiyouji")
    p.add_argument("--lengths", default=None, metavar="LIST",
                   help="context lengths, e.g. 8k,32k,128k,1M (k = 1,000; default 2k,8k,32k tokens or 8k,32k,128k chars)")
    p.add_argument("--unit", default="tokens", choices=["tokens", "chars"],
                   help="lengths in tokens of --tokenizer or in characters (e.g. 2M for Chinese)")
    p.add_argument("--depths", default=DEFAULT_DEPTHS, metavar="LIST",
                   help="needle depths in percent, e.g. 0,50,100 or 0,10,...,100 (default)")
    p.add_argument("--variant", default="single", choices=["single", "multi", "multikey"],
                   help="one needle; several that must all be packed; or one key among distractor keys")
    p.add_argument("--needles", type=int, default=3, metavar="N", help="needles of --variant multi (default 3)")
    p.add_argument("--distractors", type=int, default=3, metavar="N", help="distractors of --variant multikey (default 3)")
    p.add_argument("--methods", default="hybridctx,bm25,truncation", metavar="LIST",
                   help="methods to compare: hybridctx, bm25, truncation, llamaindex (default hybridctx,bm25,truncation)")
    p.add_argument("--budget", type=int, default=1024, metavar="N", help="tokens each method may pack (default 1024)")
    p.add_argument("--tokenizer", default="cl100k_base", metavar="NAME", help="tokenizer of budget and lengths")
    p.add_argument("--repeats", type=int, default=1, metavar="N", help="trials per cell, each with other needles")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="run only the first N trials")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="chooses needles and distractor places (default 0)")
    p.add_argument("--lang", default="auto", choices=["auto", "en", "zh"], help="needle language (default: the haystack's)")
    p.add_argument("--encoder", default=None, metavar="NAME_OR_PATH", help="hybridctx's encoder (default: packaged MiniLM)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the encoder runs")
    p.add_argument("--llm", default=None, metavar="local|URL",
                   help="also ask this model ('local' SmolLM2, or an OpenAI-compatible base URL) and score its answers")
    p.add_argument("--model", default=None, metavar="NAME", help="model name at the URL, or a local model directory")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="environment variable holding the API key")
    p.add_argument("--answer-tokens", type=int, default=64, metavar="N", help="longest LLM answer (default 64)")
    p.add_argument("--out", default=None, metavar="DIR", help="write results.json, results.md and heatmap.png here")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    import json

    from hybridctx.eval.haystack import load_haystack
    from hybridctx.eval.niah import NIAHConfig, make_methods, run_niah

    config = NIAHConfig(
        lengths=tuple(parse_sizes(args.lengths or DEFAULT_LENGTHS[args.unit], "--lengths")),
        depths=tuple(parse_depths(args.depths)), unit=args.unit, variant=args.variant, budget=args.budget,
        tokenizer=args.tokenizer, seed=args.seed, needles=args.needles, distractors=args.distractors,
        repeats=args.repeats, limit=args.limit, language=args.lang, answer_tokens=args.answer_tokens,
    )
    haystack = load_haystack(args.haystack)
    show = False if args.no_progress else None
    encoder = None
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    if "hybridctx" in names:
        from hybridctx.embeddings import load_encoder

        settings = {"device": args.device} | ({"model": args.encoder} if args.encoder else {})
        encoder = load_encoder(settings)  # the window cache reads the windowed encoder's internals
    methods = make_methods(names, tokenizer=args.tokenizer, encoder=encoder, show_progress=show)
    from hybridctx.eval.cli_args import quiet_bm25s

    quiet_bm25s()  # importing bm25s sets its logger to DEBUG: quiet it again
    llm = None
    if args.llm:
        from hybridctx.llms import load_llm

        llm = load_llm(args.llm, model=args.model, **({"api_key_env": args.api_key_env} if args.llm != "local" else {}))
    results = run_niah(haystack, config, methods, llm=llm, show_progress=show)
    if args.json:
        print(json.dumps(results.to_json(), ensure_ascii=False))
    else:
        print(results.table(), end="")
    if args.out:
        paths = results.write(args.out)
        if not args.json:
            print(f"\nwrote {', '.join(p.name for p in paths.values())} to {args.out}")
    return 0


def parse_sizes(text: str, option: str) -> list[int]:
    """``"8k,32k,1.5k,1M,500"`` → ``[8000, 32000, 1500, 1000000, 500]`` (k = 1,000, M = 1,000,000)."""
    from hybridctx.errors import ConfigError

    out = []
    for item in text.split(","):
        raw = item.strip()
        scale = {"k": 1000, "m": 1_000_000}.get(raw[-1:].lower(), 1)
        number = raw[:-1] if scale > 1 else raw
        try:
            value = float(number) * scale
        except ValueError:
            value = float("nan")
        if not value == value or value < 1 or value != int(value):
            raise ConfigError(f"{option} '{raw}' is not a length; write whole sizes such as 8k, 32000 or 1M")
        out.append(int(value))
    return out


def parse_depths(text: str) -> list[float]:
    """``"0,50,100"`` as is; ``"0,10,...,100"`` expands the step of the two values before ``...``."""
    from hybridctx.errors import ConfigError

    items = [s.strip() for s in text.split(",")]
    values: list[float] = []
    for k, item in enumerate(items):
        if item in ("...", "…"):
            if len(values) < 2 or k + 1 >= len(items):
                raise ConfigError(f"--depths '{text}': '...' needs two depths before it and one after, as in 0,10,...,100")
            continue
        try:
            value = float(item.rstrip("%"))
        except ValueError:
            raise ConfigError(f"--depths '{item}' is not a number; give percentages such as 0,50,100") from None
        if not 0 <= value <= 100:
            raise ConfigError(f"--depths {item} is not a percentage between 0 and 100")
        if k > 0 and items[k - 1] in ("...", "…"):
            step = values[-1] - values[-2]
            if step <= 0 or value <= values[-1]:
                raise ConfigError(f"--depths '{text}': '...' needs increasing depths, as in 0,10,...,100")
            while values[-1] + step < value - 1e-9:
                values.append(round(values[-1] + step, 6))
        values.append(value)
    return list(dict.fromkeys(values))
