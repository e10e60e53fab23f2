"""What a `retrieve` tool call over MCP stdio costs, against the same retrieval called in-process.

    HF_HUB_OFFLINE=1 python benchmarks/mcp_calls.py --calls 40 [--out DIR]

One run: the MCP SDK's client spawns ``python -m hybridctx.cli mcp --index
DIR`` (stdio) on the packaged Alice sample and calls ``retrieve`` with a
2,048-token budget for a rotating set of questions; after each call the same
question goes to ``HybridContext.retrieve`` in this process. Prints the server's start-up time
(index and encoder load, to the first answered ``list_tools``), p50/p95 per
call in ms for both, and the ratio; ``--out DIR`` also writes every timing to
``DIR/mcp_calls.json`` with the command line and commit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
from _common import add_out_argument, write_result  # noqa: E402

QUESTIONS = ["Who is the Hatter?", "What was written on the little bottle?",
             "What did the Dormouse say the three sisters lived on?", "Why did the Queen want to behead the Cat?"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def measure(index: Path, calls: int, log: Path) -> tuple[float, list[float], list[float]]:
    """Start-up seconds, then per-call ms over stdio and in-process, the two alternating call by call."""
    from hybridctx import HybridContext

    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "hybridctx.cli", "mcp", "--index", str(index)],
                                   env={k: v for k, v in os.environ.items() if k.startswith(("HF_", "HYBRIDCTX_"))},
                                   cwd=str(ROOT))
    began = time.perf_counter()
    with open(log, "w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=300) as client:
            await client.list_tools()
            startup = time.perf_counter() - began
            hc = HybridContext.open(index)
            remote: list[float] = []
            local: list[float] = []
            for i in range(calls + 3):
                question = QUESTIONS[i % len(QUESTIONS)]
                t = time.perf_counter()
                result = await client.call_tool("retrieve", {"query": question, "budget": 2048})
                if result.is_error:
                    raise RuntimeError(result.content[0].text)
                t1 = time.perf_counter()
                hc.retrieve(question, budget=2048)
                t2 = time.perf_counter()
                if i >= 3:
                    remote.append((t1 - t) * 1000)
                    local.append((t2 - t1) * 1000)
            hc.close()
    return startup, remote, local


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=40)
    add_out_argument(ap)
    args = ap.parse_args()
    from hybridctx import HybridContext

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "alice"
        HybridContext.build([ROOT / "hybridctx" / "samples" / "alice_in_wonderland.txt"], index, show_progress=False)
        startup, mcp_times, local = asyncio.run(measure(index, args.calls, Path(tmp) / "server.log"))
    print(f"server start-up to the first list_tools: {startup:.1f} s")
    print(f"{'method':22} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in (("in-process retrieve", local), ("MCP stdio retrieve", mcp_times)):
        print(f"{name:22} {statistics.median(values):8.1f} {percentile(values, 95):8.1f}")
    ratio = statistics.median(mcp_times) / statistics.median(local)
    print(f"ratio p50: {ratio:.2f}x")
    if args.out is not None:
        write_result(args.out, "mcp_calls.json", {"calls": args.calls, "startup_s": startup, "ratio_p50": ratio,
                                                   "in_process_ms": local, "mcp_stdio_ms": mcp_times})


if __name__ == "__main__":
    main()
