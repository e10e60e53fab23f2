"""Quick start: index a book, retrieve an exact-budget context, and ask the router.

Shows the three calls most users need — ``HybridContext.build``, ``open`` and
``retrieve`` — and what the cost router would do with one question for an API
model (Kimi) and for the local SmolLM2. Offline, about 30 s on a laptop CPU.

    python examples/quickstart.py [PATH ...] [--question TEXT] [--budget N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hybridctx import HybridContext  # noqa: E402

BOOK = Path(__file__).resolve().parents[1] / "hybridctx" / "samples" / "alice_in_wonderland.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[BOOK], help="files or directories to index")
    parser.add_argument("--question", default="Why did the Queen want to cut off the Cheshire Cat's head?")
    parser.add_argument("--budget", type=int, default=600, help="tokens (cl100k_base) for the packed context")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "quickstart.idx"
        report = HybridContext.build(args.paths, index_dir, show_progress=False)
        print(report.summary())

        hc = HybridContext.open(index_dir)
        packed = hc.retrieve(args.question, budget=args.budget)
        print(f"\nQ: {args.question}")
        print(f"packed {packed.tokens}/{packed.budget} {packed.tokenizer} tokens in {len(packed.spans)} spans "
              f"({packed.timings_ms['total']:.0f} ms); {len(packed.dropped)} candidate spans did not fit")
        for span in packed.spans:
            preview = " ".join(span.text.split())
            print(f"  {span.doc_id} [{span.start}:{span.end}] score {span.score:.3f}, {span.tokens} tokens: "
                  f"{preview[:110]}{'...' if len(preview) > 110 else ''}")

        for profile in ("kimi", "smollm2-135m-cpu"):
            decision = hc.route(args.question, profile=profile)
            full, retrieval = decision.estimates["full"], decision.estimates["retrieval"]
            print(f"\nroute for {profile}: {decision.mode} - {decision.reason}")
            print(f"  full      {full.tokens:>8,} tokens  ${full.usd:.4f}  {full.latency_s:6.2f} s  {full.kv_gib:.3f} GiB KV")
            print(f"  retrieval {retrieval.tokens:>8,} tokens  ${retrieval.usd:.4f}  {retrieval.latency_s:6.2f} s  "
                  f"{retrieval.kv_gib:.3f} GiB KV")
    return 0


if __name__ == "__main__":
    sys.exit(main())
