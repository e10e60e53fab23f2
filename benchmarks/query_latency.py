"""Query latency: hybridctx retrieve+pack against the LlamaIndex
``VectorStoreIndex`` retriever, on the same corpus and encoder, in one run.

    HF_HUB_OFFLINE=1 python benchmarks/query_latency.py --corpus ../shared/data/leval/docs.jsonl \
        --min-tokens 1000000 --queries 200 --budget 2048

Both sides get the same questions; LlamaIndex retrieves top-k chunks
(SentenceSplitter 256) with k sized to fill the same budget, hybridctx returns
a packed, exact-budget context. Every method answers each question in turn, in
an order that rotates from question to question (so no method always runs
right after the same other one). Prints p50/p95 in ms and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def load_docs(path: Path, min_tokens: int, counter) -> tuple[list[tuple[str, str]], int]:
    docs, tokens = [], 0
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if min_tokens <= 0:  # every document once
        return [(r["doc_id"], r["text"]) for r in records], sum(counter.count(r["text"]) for r in records)
    while tokens < min_tokens:  # repeat the corpus (with new ids) when it is smaller than asked
        for rec in records:
            suffix = "" if len(docs) < len(records) else f"#{len(docs) // len(records)}"
            docs.append((rec["doc_id"] + suffix, rec["text"]))
            tokens += counter.count(rec["text"])
            if tokens >= min_tokens:
                break
    return docs, tokens


def questions_for(path: Path, n: int) -> list[str]:
    qa = path.with_name("qa.jsonl")
    if qa.is_file():
        qs = [json.loads(line)["question"] for line in qa.read_text(encoding="utf-8").splitlines() if line.strip()]
        return (qs * (n // max(len(qs), 1) + 1))[:n]
    return [f"What happened in part {i}?" for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "leval" / "docs.jsonl"
    parser.add_argument("--corpus", type=Path, default=default)
    parser.add_argument("--min-tokens", type=int, default=1_000_000,
                        help="cl100k tokens of corpus at least (repeating documents); 0: every document once")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budget", type=int, default=2048)
    parser.add_argument("--index", type=Path, default=None, help="reuse/keep the hybridctx index here")
    parser.add_argument("--also-index", type=Path, action="append", default=[], metavar="DIR",
                        help="another hybridctx index of the same corpus (e.g. built with --kind HNSW32) to time too")
    parser.add_argument("--llama-index", type=Path, default=None,
                        help="reuse/keep the LlamaIndex index here (for quick iterations only: a reloaded "
                             "index answered slower than a freshly built one here)")
    parser.add_argument("--warmup", type=int, default=5, help="queries run before timing (not timed)")
    args = parser.parse_args(argv)

    from llama_index.core import Document as LlamaDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    from hybridctx import HybridContext
    from hybridctx.eval.llama_embedding import load_encoder, make_llama_embedding
    from hybridctx.tokens import get_counter

    counter = get_counter("cl100k_base")
    docs, tokens = load_docs(args.corpus, args.min_tokens, counter)
    questions = questions_for(args.corpus, args.queries + args.warmup)
    warm, questions = questions[: args.warmup], questions[args.warmup :]  # warm-up questions are not timed
    print(f"corpus: {len(docs)} docs, {tokens:,} cl100k tokens; {len(questions)} queries; budget {args.budget}",
          file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index or Path(tmp) / "hx.idx"
        if not (index_dir / "manifest.json").exists():
            jsonl = Path(tmp) / "corpus.jsonl"
            jsonl.write_text("\n".join(json.dumps({"doc_id": d, "text": t}) for d, t in docs) + "\n", encoding="utf-8")
            started = time.perf_counter()
            HybridContext.build([jsonl], index_dir)
            print(f"hybridctx index built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        hc = HybridContext.open(index_dir)
        # The same index with queries encoded by PyTorch instead of ONNX Runtime, to show what that costs.
        from hybridctx.embeddings import WindowedLandmarkEncoder
        from hybridctx.indexers import LandmarkStore

        torch_side = HybridContext(hc.store, WindowedLandmarkEncoder(
            replace(hc.encoder.config, query_runtime="torch")), path=str(index_dir))
        # The same corpus indexed with other FAISS kinds (e.g. HNSW32), sharing the encoder.
        others = {f"hybridctx, {HybridContext.describe(d)['vectors'].get('kind', d)} vectors": HybridContext(
            LandmarkStore.load(d), hc.encoder, path=str(d)) for d in args.also_index}

        model = load_encoder(None, device="cpu")
        embed = make_llama_embedding(model)
        started = time.perf_counter()
        if args.llama_index is not None and (args.llama_index / "docstore.json").exists():
            from llama_index.core import StorageContext, load_index_from_storage

            storage = StorageContext.from_defaults(persist_dir=str(args.llama_index))
            index = load_index_from_storage(storage, embed_model=embed)
            print(f"LlamaIndex index loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        else:
            nodes = SentenceSplitter(chunk_size=256, chunk_overlap=20).get_nodes_from_documents(
                [LlamaDocument(text=t, doc_id=d) for d, t in docs])
            index = VectorStoreIndex(nodes, embed_model=embed, show_progress=True)
            print(f"LlamaIndex index built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            if args.llama_index is not None:
                index.storage_context.persist(persist_dir=str(args.llama_index))
        top_k = max(1, args.budget // 256)
        retriever = index.as_retriever(similarity_top_k=top_k)

        for q in warm:  # warm all three (ONNX session, caches, LlamaIndex)
            hc.retrieve(q, budget=args.budget)
            torch_side.retrieve(q, budget=args.budget)
            for other in others.values():
                other.retrieve(q, budget=args.budget)
            retriever.retrieve(q)
        hx_ms, ht_ms, li_ms = [], [], []
        other_ms: dict[str, list[float]] = {name: [] for name in others}
        stages: dict[str, list[float]] = {}

        def run_hybridctx(q: str) -> None:
            packed = hc.retrieve(q, budget=args.budget)
            assert packed.tokens <= args.budget
            for stage, ms in packed.timings_ms.items():
                stages.setdefault(stage, []).append(ms)

        def run_other(other: HybridContext) -> Callable[[str], None]:
            def run(q: str) -> None:
                assert other.retrieve(q, budget=args.budget).tokens <= args.budget
            return run

        methods: list[tuple[Callable[[str], Any], list[float]]] = [
            (run_hybridctx, hx_ms),
            (lambda q: torch_side.retrieve(q, budget=args.budget), ht_ms),
            *[(run_other(other), other_ms[name]) for name, other in others.items()],
            (retriever.retrieve, li_ms),
        ]
        for i, q in enumerate(questions):
            # All methods answer each question back to back, in an order that rotates per
            # question: what runs just before a method (a PyTorch call whose OpenMP threads
            # still spin, say) is the same mix for every method.
            shift = i % len(methods)
            for run, times in methods[shift:] + methods[:shift]:
                t = time.perf_counter()
                run(q)
                times.append((time.perf_counter() - t) * 1000)

    print(f"| method | p50 ms | p95 ms | mean ms |\n| --- | ---: | ---: | ---: |")
    print(f"| hybridctx retrieve+pack ({args.budget} tokens) | {percentile(hx_ms, 50):.1f} | "
          f"{percentile(hx_ms, 95):.1f} | {statistics.mean(hx_ms):.1f} |")
    print(f"| hybridctx, queries encoded by PyTorch | {percentile(ht_ms, 50):.1f} | "
          f"{percentile(ht_ms, 95):.1f} | {statistics.mean(ht_ms):.1f} |")
    for name, values in other_ms.items():
        print(f"| {name} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | {statistics.mean(values):.1f} |")
    print(f"| LlamaIndex VectorStoreIndex retriever (top {top_k}) | {percentile(li_ms, 50):.1f} | "
          f"{percentile(li_ms, 95):.1f} | {statistics.mean(li_ms):.1f} |")
    print("hybridctx stages, p50 ms: " + ", ".join(f"{k} {percentile(v, 50):.1f}" for k, v in stages.items()))
    for name, values in other_ms.items():
        print(f"speed-up at p50, {name}: {percentile(li_ms, 50) / percentile(values, 50):.1f}x")
    print(f"speed-up at p50: {percentile(li_ms, 50) / percentile(hx_ms, 50):.1f}x (target >= 5x); "
          f"corpus {tokens:,} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
