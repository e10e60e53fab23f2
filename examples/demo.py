"""The main job on the embedded default: index a bundled public-domain book,
show the best passages for a few questions, then answer some of them with the
local SmolLM2 — each with its route decision, cited spans, tokens and timings
(local FAISS index, packaged MiniLM encoder, no server, offline).

    python examples/demo.py [--budget 500] [--answers 3] [--index DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hybridctx import HybridContext  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "hybridctx" / "samples"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=500, help="tokens per packed context")
    parser.add_argument("--index", type=Path, default=None, help="index directory (default: a temporary one)")
    parser.add_argument("--answers", type=int, default=3, help="questions to answer with the local SmolLM2 (0: none)")
    args = parser.parse_args(argv)

    book = SAMPLES / "alice_in_wonderland.txt"
    questions = [json.loads(line) for line in (SAMPLES / "alice_questions.jsonl").read_text(encoding="utf-8").splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index or Path(tmp) / "alice.idx"
        print(f"Indexing {book.name} ({book.stat().st_size:,} bytes) into {index_dir} ...")
        report = HybridContext.build([book], index_dir)
        print(report.summary(), "\n")
        hc = HybridContext.open(index_dir)
        found = 0
        for item in questions:
            started = time.perf_counter()
            packed = hc.retrieve(item["query"], budget=args.budget)
            ms = (time.perf_counter() - started) * 1000
            hit = any(item["evidence"] in s.text for s in packed.spans)
            found += hit
            print(f"Q: {item['query']}")
            print(f"   {len(packed.spans)} spans, {packed.tokens}/{args.budget} tokens, {ms:.0f} ms, "
                  f"evidence {'found' if hit else 'missed'}")
            best = max(packed.spans, key=lambda s: s.score) if packed.spans else None
            if best is not None:
                snippet = " ".join(best.text.split())
                print(f"   best [{best.start}:{best.end}]: {snippet[:300]}{'...' if len(snippet) > 300 else ''}")
            print()
        print(f"Evidence inside the packed context for {found}/{len(questions)} questions at {args.budget} tokens.")
        if args.answers:
            answer_some(hc, [q["query"] for q in questions[: args.answers]])
    return 0


def answer_some(hc: HybridContext, queries: list[str]) -> None:
    """Route, retrieve and answer with the embedded SmolLM2-135M (CPU)."""
    from hybridctx.routing.answering import answer_question
    from hybridctx.llms import default_local_llm
    from hybridctx.routing.router import RouteLimits

    print("\nLoading the local SmolLM2-135M-Instruct ...")
    llm = default_local_llm(device="cpu")
    limits = RouteLimits(answer_tokens=96, default_budget=1024)
    for query in queries:
        answer = answer_question(hc, query, llm, profile="smollm2-135m-cpu", limits=limits, max_tokens=96)
        print(f"\nQ: {query}\nA: {answer.text}")
        print(f"   route: {answer.mode}{' (escalated)' if answer.escalated else ''} - {answer.route['reason']}")
        print(f"   context {answer.context.tokens} tokens in {len(answer.context.spans)} spans; prompt "
              f"{answer.prompt_tokens} + answer {answer.completion_tokens} tokens; "
              f"{answer.timings_ms['total'] / 1000:.1f} s")
        for marker in answer.citations or range(1, min(2, len(answer.context.spans)) + 1):
            span = answer.context.spans[marker - 1]
            print(f"   [{marker}] {span.doc_id}[{span.start}:{span.end}] {' '.join(span.text.split())[:120]}...")


if __name__ == "__main__":
    sys.exit(main())
