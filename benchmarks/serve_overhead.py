"""What `hybridctx serve` adds to a chat request, against the same request sent straight to the upstream.

    HF_HUB_OFFLINE=1 python benchmarks/serve_overhead.py --requests 40 [--out DIR]

One run, one machine: the official `openai` client asks the same question (a)
of the upstream directly, (b) through the gateway, routed to retrieval, and
(c) through the gateway, sent the full corpus. The upstream is the tests'
loopback OpenAI-compatible server on 127.0.0.1 (a fixed answer, no model), so
the differences are the gateway's own work: HTTP, routing, retrieval or
reading the corpus, packing, the prompt and the extension. Requests rotate
between the three so none always follows the same other. Prints p50/p95 in
ms, the gateway's added p50, the ratio to direct, the tokens each mode sent
upstream, and the stages the gateway reports (``timings_ms``). ``--out DIR`` writes every
timing to ``DIR/serve_overhead.json`` with the command line and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "llms"))  # the loopback upstream the tests use
sys.path.insert(0, str(ROOT / "tests" / "serve"))  # Served: an ASGI app under uvicorn in a thread

from _common import add_out_argument, write_result  # noqa: E402

QUESTION = "What did the Dormouse say the three sisters lived on?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=40, help="requests per method (after 3 warm-up rounds)")
    ap.add_argument("--profile", default="gpt-4o-mini")
    add_out_argument(ap, help="write every timing to serve_overhead.json in this directory")
    args = ap.parse_args()

    import openai
    from loopback_server import LoopbackServer, Reply, completion_body
    from serve_helpers import Served

    from hybridctx import HybridContext
    from hybridctx.serve.gateway import GatewaySettings, create_app
    from hybridctx.serve.routing_turn import TurnSettings, Upstream

    book = ROOT / "hybridctx" / "samples" / "alice_in_wonderland.txt"
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as upstream:
        HybridContext.build([book], Path(tmp) / "alice", show_progress=False)
        hc = HybridContext.open(Path(tmp) / "alice")
        settings = GatewaySettings(upstream=Upstream(upstream.base_url, "test-model", max_retries=0),
                                   turn=TurnSettings(profile=args.profile), max_concurrent=4)
        served = Served(create_app({"alice": hc}, settings))
        gateway = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
        direct = openai.OpenAI(base_url=upstream.base_url, api_key="none", max_retries=0)
        messages = [{"role": "user", "content": QUESTION}]
        methods = {
            "direct": lambda: direct.chat.completions.create(model="test-model", messages=messages),
            "gateway-retrieval": lambda: gateway.chat.completions.create(model="alice", messages=messages),
            "gateway-full": lambda: gateway.chat.completions.create(
                model="alice", messages=messages, extra_body={"hybridctx": {"prefer_full_under_tokens": 10**7}}),
        }
        names = list(methods)
        times: dict[str, list[float]] = {n: [] for n in names}
        seen: dict[str, dict[str, Any]] = {}
        sent: dict[str, int] = {}
        for round_no in range(args.requests + 3):
            order = names[round_no % 3:] + names[:round_no % 3]
            for name in order:
                upstream.queue(Reply(body=completion_body("They lived on treacle [1].")))
                began = time.perf_counter()
                response = methods[name]()
                elapsed = (time.perf_counter() - began) * 1000
                sent[name] = len(json.dumps(upstream.chat_requests()[-1].body["messages"]))
                if round_no >= 3:
                    times[name].append(elapsed)
                    ext = (response.model_extra or {}).get("hybridctx")
                    if ext:
                        seen[name] = ext
        served.stop()
        hc.close()

    base = statistics.median(times["direct"])
    print(f"{args.requests} requests per method, question {QUESTION!r}, profile {args.profile}")
    print(f"{'method':18} {'p50 ms':>8} {'p95 ms':>8} {'added p50':>10} {'x direct':>9}  upstream prompt")
    for name in names:
        p50, p95 = statistics.median(times[name]), percentile(times[name], 95)
        ext = seen.get(name)
        tokens = f"{ext['context_tokens']:,} context tokens, {sent[name]:,} chars" if ext else f"{sent[name]:,} chars"
        print(f"{name:18} {p50:8.1f} {p95:8.1f} {p50 - base:10.1f} {p50 / base:9.2f}  {tokens}")
    for name, ext in seen.items():
        est = ext["route"]["estimates"]
        print(f"{name}: mode {ext['mode']}; stages {ext['timings_ms']}; estimated usd full "
              f"{est['full']['usd']:.6f} vs retrieval {est['retrieval']['usd']:.6f}")
    if args.out:
        write_result(args.out, "serve_overhead.json", {"requests": args.requests, "profile": args.profile,
                                                        "times_ms": times, "extensions": seen})


if __name__ == "__main__":
    main()
