"""Needle in a haystack at scale: 1M tokens of English, 2M characters of Chinese.

    HF_HUB_OFFLINE=1 python benchmarks/niah_scale.py --out docs/results

It writes ``OUT/niah_scale.json`` (every case, the command line and commit).

Each case runs in a child process of its own, so its peak memory (``ru_maxrss``,
and with ``--tracemalloc`` the Python heap peak) is its own. A case is one
haystack cut to one length, needles at a few depths, every method prepared and
asked per depth; the first depth pays for encoding the haystack, later depths
only for the windows the needle changed (see ``hybridctx.eval.niah``).

Cases (``--cases``):

- ``en``: ``pg_essays/essays`` repeated to ``--en-length`` tokens (cl100k_base), default 1M;
- ``zh``: ``zh_novels/original`` (西游记 + 红楼梦) repeated to ``--zh-length`` characters,
  default 2M; MiniLM cannot read Chinese, so hybridctx finds it by BM25 over jieba words.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import add_data_argument, add_out_argument, write_result  # noqa: E402

CASES = {
    "en": {"haystack": "pg_essays/essays", "unit": "tokens", "length": "en_length"},
    "zh": {"haystack": "zh_novels/original", "unit": "chars", "length": "zh_length"},
}


def run_case(name: str, args: argparse.Namespace) -> dict:
    """Run one case in this process and return its record."""
    import logging
    import tracemalloc

    if args.tracemalloc:
        tracemalloc.start()
    logging.basicConfig(level=logging.WARNING)
    from hybridctx.eval.cli_niah import parse_depths, parse_sizes
    from hybridctx.eval.haystack import load_haystack
    from hybridctx.eval.niah import NIAHConfig, make_methods, run_niah

    case = CASES[name]
    length = parse_sizes(getattr(args, case["length"]), "--length")[0]
    config = NIAHConfig(lengths=(length,), depths=tuple(parse_depths(args.depths)), unit=case["unit"],
                        variant=args.variant, budget=args.budget, seed=args.seed)
    started = time.perf_counter()
    haystack = load_haystack(Path(args.data) / case["haystack"])
    methods = make_methods(args.methods.split(","), show_progress=not args.quiet)
    import bm25s  # noqa: F401  (it sets its logger to DEBUG when imported)

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    load_s = time.perf_counter() - started
    results = run_niah(haystack, config, methods, show_progress=not args.quiet)
    data = results.to_json()
    per_method = {}
    for m in results.methods:
        prep = [t.outcome(m).prepare_s for t in results.trials]
        per_method[m] = {
            "pass_rate": data["summary"][m]["pass_rate"],
            "passed": [t.outcome(m).passed for t in results.trials],
            "prepare_s_first": round(prep[0], 2),
            "prepare_s_later_mean": round(sum(prep[1:]) / max(1, len(prep) - 1), 2),
            "retrieve_ms_mean": data["summary"][m]["mean_retrieve_ms"],
            "mean_tokens": data["summary"][m]["mean_tokens"],
        }
    record = {
        "case": name, "haystack": data["haystack"], "unit": case["unit"], "length": length,
        "haystack_units": data["lengths"][0]["haystack_units"], "doc_chars": results.trials[0].doc_chars,
        "depths": data["depths"], "variant": args.variant, "budget": args.budget, "methods": per_method,
        "seconds_total": round(time.perf_counter() - started, 1), "seconds_setup": round(load_s, 1),
        "seconds_grid": data["seconds"], "encoder_cache": data["encoder_cache"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "trials": [{k: t[k] for k in ("depth", "question", "needles", "results")} for t in data["trials"]],
    }
    if args.tracemalloc:
        record["tracemalloc_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--cases", default="en,zh", help="which cases: en, zh (default both)")
    parser.add_argument("--en-length", default="1M", help="English length in cl100k tokens (default 1M)")
    parser.add_argument("--zh-length", default="2M", help="Chinese length in characters (default 2M)")
    parser.add_argument("--depths", default="0,25,50,75,100", help="needle depths (default 0,25,50,75,100)")
    parser.add_argument("--variant", default="single", choices=["single", "multi", "multikey"])
    parser.add_argument("--methods", default="hybridctx,truncation", help="methods (bm25 re-chunks per depth: slow)")
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap peak (slower)")
    add_out_argument(parser, "docs/results", help="write niah_scale.json into this directory")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # the child's own case
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args), ensure_ascii=False))
        return 0
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:])]
    records = []
    for name in args.cases.split(","):
        print(f"case {name} ...", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, *forwarded, "--case", name], stdout=subprocess.PIPE,
                              text=True, check=True)
        record = json.loads(done.stdout.strip().splitlines()[-1])
        records.append(record)
        summary = ", ".join(f"{m} {v['pass_rate']:.2f}" for m, v in record["methods"].items())
        print(f"{name}: {record['haystack_units']:,} {record['unit']} ({record['doc_chars']:,} chars), "
              f"{len(record['depths'])} depths: recall {summary}; {record['seconds_total']:.0f} s, "
              f"peak RSS {record['peak_rss_mib']:,.0f} MiB", flush=True)
    payload = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
               "cases": records}
    print(f"wrote {write_result(args.out, 'niah_scale.json', payload, forwarded)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
