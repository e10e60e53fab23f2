"""A Chinese long novel: 西游记 (Journey to the West, public domain, 728,655 characters).

Shows hybridctx on a text far past any small model's window and outside the
packaged encoder's vocabulary: MiniLM reads Chinese as unknown tokens, so
hybridctx gives such documents zero vectors and finds them through BM25 over
jieba words and character bigrams — retrieval still lands on the right
chapter. Then the router prices sending the whole novel to Kimi against
retrieving. With ``--llm`` it also answers with that model.

    python examples/chinese_novel.py [--budget 800] [--llm local|URL --model NAME]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hybridctx import HybridContext  # noqa: E402

NOVEL = Path(__file__).resolve().parent / "data" / "xiyouji.txt.gz"
# Questions with a phrase that the right passage contains, to show whether it was found.
QUESTIONS = [
    ("石猴在花果山瀑布后面发现的洞府叫什么？", "水帘洞洞天"),
    ("玉帝封孙悟空做了什么官？", "弼马温"),
    ("如来给观音菩萨的三个箍儿叫什么？", "紧箍儿"),
    ("红孩儿在哪里修行了三百年？", "火焰山修行了三百年"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=800, help="tokens (cl100k_base) per packed context")
    parser.add_argument("--llm", default=None, metavar="local|URL", help="also answer with this model")
    parser.add_argument("--model", default=None, help="model name at the URL")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp) / "西游记.txt"
        book.write_text(gzip.decompress(NOVEL.read_bytes()).decode("utf-8"), encoding="utf-8")
        index_dir = Path(tmp) / "xiyouji.idx"
        started = time.perf_counter()
        report = HybridContext.build([book], index_dir, show_progress=False)
        print(f"{report.summary()} ({time.perf_counter() - started:.0f} s)")
        hc = HybridContext.open(index_dir)

        found = 0
        for question, evidence in QUESTIONS:
            packed = hc.retrieve(question, budget=args.budget)
            hit = evidence in packed.context
            found += hit
            print(f"\n问: {question}\n   {len(packed.spans)} spans, {packed.tokens}/{args.budget} tokens, "
                  f"{packed.timings_ms['total']:.0f} ms, evidence {'found' if hit else 'missed'}")
            best = max(packed.spans, key=lambda s: s.score, default=None)
            if best is not None:
                print(f"   best [{best.start}:{best.end}]: {''.join(best.text.split())[:90]}")
        print(f"\nEvidence inside the packed context for {found}/{len(QUESTIONS)} questions at {args.budget} tokens.")

        decision = hc.route("总结整部小说的主要情节", profile="kimi")
        full = decision.estimates["full"]
        print(f"\nroute for kimi, 'summarise the whole novel': {decision.mode} - {decision.reason}")
        print(f"  full context: {full.tokens:,} tokens, ${full.usd:.3f}, ~{full.latency_s:.0f} s")

        if args.llm:
            from hybridctx.routing.answering import answer_question
            from hybridctx.llms import load_llm

            llm = load_llm(args.llm, model=args.model)
            answer = answer_question(hc, QUESTIONS[0][0], llm, profile="kimi" if args.llm != "local" else "smollm2-135m-cpu")
            print(f"\n问: {QUESTIONS[0][0]}\n答: {answer.text}  (route: {answer.mode}, citations {answer.citations})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
