"""Query latency: hybridctx retrieve+pack against the LlamaIndex
``VectorStoreIndex`` retriever, on the same corpus and encoder, in one run.

    HF_HUB_OFFLINE=1 python benchmarks/query_latency.py --min-tokens 1000000 --queries 200 --budget 2048 \
        [--corpus FILE.jsonl] [--out DIR]

Both sides get the same questions; LlamaIndex retrieves top-k chunks
(SentenceSplitter 256) with k sized to fill the same budget, hybridctx returns
a packed, exact-budget context. Every method answers each question in turn, in
an order that rotates from question to question (so no method always runs
right after the same other one). Prints p50/p95 in ms and the ratio. The corpus is
``--data``'s ``leval/docs.jsonl`` unless ``--corpus`` names another (its ``qa.jsonl``
beside it gives the questions); ``--out DIR`` writes ``latency.json`` (every timing,
the command line and commit) and ``latency.png`` there.
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

from _common import add_data_argument, add_out_argument, write_result  # noqa: E402


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


def write_report(out: Path, rows: dict[str, list[float]], stages: dict[str, list[float]], peer: list[float],
                 ours: list[float], facts: dict[str, Any], argv: list[str] | None = None) -> None:
    """``latency.json`` (every timing, in ms) and ``latency.png``: p50/p95 per method, and
    hybridctx's p50 per stage beside the peer's p50."""
    from hybridctx.eval.plotting import pyplot, save_figure

    summary = {name: {"p50": percentile(v, 50), "p95": percentile(v, 95), "mean": statistics.mean(v)}
               for name, v in rows.items()}
    write_result(out, "latency.json", {
        **facts, "summary": summary, "speedup_p50": percentile(peer, 50) / percentile(ours, 50),
        "stages_p50": {k: percentile(v, 50) for k, v in stages.items()}, "timings_ms": rows, "stages_ms": stages},
        argv)
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 2]})
    names = list(rows)
    y = range(len(names))
    left.barh([i + 0.2 for i in y], [summary[n]["p50"] for n in names], height=0.4, label="p50")
    left.barh([i - 0.2 for i in y], [summary[n]["p95"] for n in names], height=0.4, label="p95", alpha=0.6)
    left.set_yticks(list(y), [n.replace(" retriever", "\nretriever").replace(", ", ",\n") for n in names], fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("ms per query")
    left.legend(fontsize=8)
    left.set_title(f"{facts['corpus_tokens']:,}-token corpus, budget {facts['budget']}, {facts['queries']} queries",
                   fontsize=9)
    parts = [(k, percentile(v, 50)) for k, v in stages.items() if k != "total"]
    bottom = 0.0
    for stage, ms in parts:
        right.bar(0, ms, bottom=bottom, label=f"{stage} {ms:.1f}")
        bottom += ms
    right.bar(1, percentile(peer, 50), color="grey", label=f"LlamaIndex {percentile(peer, 50):.1f}")
    right.set_xticks([0, 1], ["hybridctx\n(stages, p50)", "LlamaIndex\n(p50)"], fontsize=8)
    right.set_ylabel("ms")
    right.legend(fontsize=7)
    right.set_title(f"{percentile(peer, 50) / percentile(ours, 50):.1f}x faster at p50", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out / "latency.png")
    print(f"wrote {out / 'latency.json'} and {out / 'latency.png'}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--corpus", type=Path, default=None, help="a docs.jsonl (default: leval/docs.jsonl in --data)")
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
    add_out_argument(parser, help="also write latency.json (every timing) and latency.png into this directory")
    args = parser.parse_args(argv)
    if args.corpus is None:
        args.corpus = args.data / "leval" / "docs.jsonl"

    from llama_index.core import Document as LlamaDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    from hybridctx import HybridContext
    from hybridctx.eval.llama_embedding import load_encoder, make_llama_embedding
    from hybridctx.packing.tokens import get_counter

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
        from hybridctx.embeddings.registry import encoder_record, load_encoder as load_landmark_encoder
        from hybridctx.indexers import LandmarkStore

        backend = encoder_record(hc.encoder).get("backend", "transformers")  # the index's own backend
        torch_side = HybridContext(hc.store, load_landmark_encoder(
            replace(hc.encoder.config, query_runtime="torch"), backend=backend), path=str(index_dir))
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

    rows = {f"hybridctx retrieve+pack ({args.budget} tokens)": hx_ms, "hybridctx, queries encoded by PyTorch": ht_ms,
            **other_ms, f"LlamaIndex VectorStoreIndex retriever (top {top_k})": li_ms}
    print("| method | p50 ms | p95 ms | mean ms |\n| --- | ---: | ---: | ---: |")
    for name, values in rows.items():
        print(f"| {name} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | {statistics.mean(values):.1f} |")
    print("hybridctx stages, p50 ms: " + ", ".join(f"{k} {percentile(v, 50):.1f}" for k, v in stages.items()))
    for name, values in other_ms.items():
        print(f"speed-up at p50, {name}: {percentile(li_ms, 50) / percentile(values, 50):.1f}x")
    print(f"speed-up at p50: {percentile(li_ms, 50) / percentile(hx_ms, 50):.1f}x (target >= 5x); "
          f"corpus {tokens:,} tokens")
    if args.out is not None:
        write_report(args.out, rows, stages, li_ms, hx_ms, {"corpus_tokens": tokens, "documents": len(docs),
                                                             "budget": args.budget, "queries": len(questions)}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
