"""Flat against HNSW32 on real landmark vectors: search time by index size, and how
deep an HNSW search must go to keep exact search's results.

    HF_HUB_OFFLINE=1 python benchmarks/hnsw_depth.py --index DIR [--dataset leval] [--out DIR]

``DIR`` is a hybridctx index (e.g. the whole leval corpus, `hybridctx index
../shared/data/leval/docs.jsonl --index DIR`); its exact vectors are read and the
questions of ``--dataset`` (a folder of ``--data``) are the queries (without it,
synthetic questions). Prints p50 ms per query (one thread, top 100), the share of
exact search's top 100 that HNSW keeps at each depth, and, with ``--dataset``, the
evidence recall of whole-corpus retrieval at 2,048 tokens with exact search and
with HNSW at each depth (DESIGN.md scoring). ``--out DIR`` also writes every row
to ``DIR/hnsw_depth.json`` with the command line and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import add_data_argument, add_out_argument, write_result  # noqa: E402

_K = 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    add_data_argument(parser)
    parser.add_argument("--dataset", default=None, help="the folder of --data whose questions are the queries "
                        "(default: synthetic questions, no evidence recall)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--depths", type=int, nargs="+", default=[64, 200, 400])
    add_out_argument(parser)
    args = parser.parse_args(argv)
    dataset = None if args.dataset is None else args.data / args.dataset

    import faiss

    from hybridctx import HybridContext

    hc = HybridContext.open(args.index)
    vectors = np.load(args.index / "vectors.npy")
    questions = _questions(dataset, args.queries)
    queries = np.concatenate([hc.encoder.encode_queries([q]) for q in questions]).astype(np.float32)
    faiss.omp_set_num_threads(1)

    print(f"{len(vectors):,} vectors, {len(queries)} queries, top {_K}, one thread\n")
    print("| vectors | Flat p50 ms | HNSW32 p50 ms (depth 200) | HNSW32 build s |\n| ---: | ---: | ---: | ---: |")
    by_size, by_depth = [], []
    for n in sorted({min(n, len(vectors)) for n in (5_000, 10_000, 20_000, len(vectors))}):
        flat, hnsw, build = _pair(faiss, vectors[:n])
        hnsw.hnsw.efSearch = 200
        by_size.append({"vectors": n, "flat_p50_ms": _p50(flat, queries), "hnsw_p50_ms": _p50(hnsw, queries),
                        "hnsw_build_s": build})
        print(f"| {n:,} | {by_size[-1]['flat_p50_ms']:.2f} | {by_size[-1]['hnsw_p50_ms']:.2f} | {build:.1f} |")

    flat, hnsw, _ = _pair(faiss, vectors)
    _, exact = flat.search(queries, _K)
    print("\n| HNSW32 depth | top-100 kept | p50 ms |\n| ---: | ---: | ---: |")
    for depth in args.depths:
        hnsw.hnsw.efSearch = depth
        _, found = hnsw.search(queries, _K)
        kept = float(np.mean([len(set(f) & set(e)) / _K for f, e in zip(found, exact)]))
        by_depth.append({"depth": depth, "top100_kept": kept, "p50_ms": _p50(hnsw, queries)})
        print(f"| {depth} | {kept:.3f} | {by_depth[-1]['p50_ms']:.2f} |")

    recall = None if dataset is None else _evidence_recall(hc, dataset, args.depths, len(questions))
    if args.out is not None:
        write_result(args.out, "hnsw_depth.json", {"index": str(args.index), "dataset": args.dataset,
                                                    "queries": len(queries), "by_size": by_size,
                                                    "by_depth": by_depth, "evidence_recall": recall}, argv)
    return 0


def _questions(data: Path | None, n: int) -> list[str]:
    if data is None:
        return [f"What does section {i} say about payment and termination?" for i in range(n)]
    lines = (data / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:n]


def _pair(faiss, x: np.ndarray) -> tuple:
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    hnsw = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    started = time.perf_counter()
    hnsw.add(x)
    return flat, hnsw, time.perf_counter() - started


def _p50(index, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None], _K)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _evidence_recall(hc, data: Path, depths: list[int], n: int) -> dict[str, float]:
    """Whole-corpus evidence recall at 2,048 tokens: exact vectors, then HNSW32 at each depth."""
    from hybridctx.eval.datasets import load_dataset
    from hybridctx.eval.scoring import score_question
    from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex

    dataset = load_dataset(data)
    items = dataset.questions[:: max(1, len(dataset.questions) // min(n, 160))]
    vectors = hc.store.vectors
    print(f"\nwhole-corpus evidence recall at 2,048 tokens, {len(items)} questions of {dataset.name}:")
    out = {}
    for depth in [None, *depths]:
        if depth is None:
            index = FaissVectorIndex(vectors.dim, "Flat", use_gpu=False)
        else:
            # rerank * k / 2 is the depth a search asks for: rerank 1 leaves efSearch in charge.
            index = FaissVectorIndex(vectors.dim, "HNSW32", ef_search=depth, rerank=1, use_gpu=False)
        index.add(vectors.ids(), vectors.vectors(vectors.ids()))
        hc.store._vectors = index  # the same store, searched through another index
        scores = [score_question(it, [(s.doc_id, s.start, s.end) for s in hc.retrieve(it.question, budget=2048).spans],
                                 dataset.docs) for it in items]
        out["exact" if depth is None else str(depth)] = float(np.mean(scores))
        print(f"  {'exact (Flat)' if depth is None else f'HNSW32, depth {depth}'}: {np.mean(scores):.3f}")
    hc.store._vectors = vectors
    return out


if __name__ == "__main__":
    sys.exit(main())
