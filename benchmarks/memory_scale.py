"""Memory at scale: peak RSS, index bytes per token and query latency of the vector index,
Flat vs IVF-PQ (in RAM) vs IVF-PQ on disk, at corpus sizes beyond what can be encoded here.

    python benchmarks/memory_scale.py --tokens 1000000 10000000 --out docs/results --plot

The vectors are synthetic (encoding 10M tokens would take ~30 min per run on
2 CPU cores): one 384-d landmark per 25 corpus tokens (the rate measured on the
shared corpora), drawn around 1,000 topic centres so that IVF has structure to
find, as sentence embeddings do. Only the vector part of an index is measured
(``FaissVectorIndex``: FAISS files and the exact float32 copy); the SQLite
tables and BM25 files come on top for a real corpus.

Each (kind, size) is built in a fresh subprocess and queried in another, so
each peak RSS is that phase's own high-water mark (``VmHWM``; see
:func:`peak_rss_mb` for why not ``ru_maxrss`` of a child). It counts the pages
of memory-mapped files the process touched, which the kernel can drop under
memory pressure; the anonymous part after the queries is reported beside it.
Before each query process the index files are dropped from the page cache
(``posix_fadvise(DONTNEED)``, our files only), so loading reads from disk.
Query latency is one query at a time, k=10, after 5 warm-up queries.

``--lexical`` measures the BM25 index instead: peak RSS of building and saving
it from a saved tables file, by the previous in-memory path (every sentence
read into a list, token-id lists for bm25s) and by the streaming builder::

    python benchmarks/memory_scale.py --lexical --tokens 1000000 10000000 --out docs/results

The sentences are synthetic: 25 words each, 40 per document, words drawn from
a Zipf law (a=1.15) over 512k pseudo-words, so the vocabulary grows with the
corpus as real text's does (Heaps' law).

``--out DIR`` writes ``memory_scale.json`` (``memory_scale_lexical.json`` with ``--lexical``)
there, with the command line and commit, and ``--plot`` draws ``memory_scale.png`` beside it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import add_out_argument, figure_metadata, write_result

KINDS = {"flat": "Flat", "ivfpq": "IVF{nlist},PQ{m}", "ondisk": "IVF{nlist},PQ{m},OnDisk"}
LABELS = {"flat": "Flat (exact, RAM)", "ivfpq": "IVF-PQ (RAM)", "ondisk": "IVF-PQ on disk"}
_CHUNK = 4096  # vectors per add(), as documents arrive in groups
_CENTRES = 1000


@functools.lru_cache(maxsize=2)
def _centres(dim: int) -> np.ndarray:
    return np.random.default_rng(12345).standard_normal((_CENTRES, dim)).astype(np.float32)


def synthetic(start: int, n: int, dim: int, seed: int) -> np.ndarray:
    """Rows ``start .. start+n`` of a deterministic clustered stream, ``(n, dim) float32`` unit vectors.

    Each row is a topic centre plus as much noise again (cosine ~0.7 to its centre);
    ``start`` must be a multiple of the 4096-row block that seeds the generator.
    """
    if start % _CHUNK:
        raise ValueError(f"start {start} is not a multiple of {_CHUNK}")
    centres = _centres(dim)
    out = np.empty((n, dim), np.float32)
    for lo in range(0, n, _CHUNK):
        rng = np.random.default_rng([seed, (start + lo) // _CHUNK])
        rows = centres[rng.integers(0, _CENTRES, _CHUNK)] + rng.standard_normal((_CHUNK, dim)).astype(np.float32)
        out[lo : lo + _CHUNK] = rows[: min(_CHUNK, n - lo)]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field in MB (Linux), else ``None``."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    return None


def anon_rss_mb() -> float | None:
    """Anonymous (not file-backed) resident memory now: what the kernel cannot drop under pressure."""
    return _status_mb("RssAnon")


def peak_rss_mb() -> float:
    """This process's RSS high-water mark in MB.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` of a child starts at its parent's RSS
    when it was forked (Linux keeps the forked copy's mark across ``exec``:
    measured, a child of a 312 MB parent reported 312 MB), so on Linux the
    same high-water mark is read from ``VmHWM``, which belongs to the process's
    own post-``exec`` memory; elsewhere ``ru_maxrss`` is the fallback.
    """
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 1e6


# -- child processes ----------------------------------------------------------
def child_baseline() -> dict:
    import faiss  # noqa: F401

    from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex  # noqa: F401

    return {"peak_rss_mb": peak_rss_mb()}


def child_build(kind: str, n: int, dim: int, out: Path) -> dict:
    from hybridctx.indexers.persistence import write_index_dir
    from hybridctx.indexers.vectors.factory import create_backend

    started = time.perf_counter()
    index = create_backend(None, dim, kind)  # the on-disk IVF for kinds ending in ,OnDisk
    for lo in range(0, n, _CHUNK):
        m = min(_CHUNK, n - lo)
        index.add(np.arange(lo, lo + m, dtype=np.int64), synthetic(lo, m, dim, seed=1))
    added = time.perf_counter() - started
    write_index_dir(out, lambda tmp: {"files_written": index.save(tmp)}, {"index": {"kind": kind, "dim": dim}})
    files = {p.name: p.stat().st_size for p in out.iterdir() if p.name != "manifest.json"}
    return {"peak_rss_mb": peak_rss_mb(), "anon_rss_mb": anon_rss_mb(), "add_s": added,
            "build_s": time.perf_counter() - started, "files": files}


def child_query(path: Path, queries: Path, k: int) -> dict:
    from hybridctx.indexers.persistence import read_manifest
    from hybridctx.indexers.vectors.factory import load_backend

    q = np.load(queries, allow_pickle=False)
    started = time.perf_counter()
    manifest = read_manifest(path, verify=True)  # what HybridContext.open does by default
    index = load_backend(path, manifest)
    load_s = time.perf_counter() - started
    for i in range(5):
        index.search(q[i : i + 1], k)
    times, found = [], []
    for i in range(5, len(q)):
        t = time.perf_counter()
        _, ids = index.search(q[i : i + 1], k)
        times.append((time.perf_counter() - t) * 1000)
        found.append(ids[0])
    return {"peak_rss_mb": peak_rss_mb(), "anon_rss_mb": anon_rss_mb(), "load_s": load_s, "latency_ms": times,
            "found": np.asarray(found).tolist()}


# -- BM25 (--lexical) ---------------------------------------------------------
_WORDS_PER_SENTENCE, _SENTENCES_PER_DOC, _ZIPF_WORDS = 25, 40, 1 << 19


def synthetic_sentences(n: int, seed: int = 3) -> list[str]:
    """``n`` sentences of Zipf-distributed pseudo-words (deterministic; real text is not needed to size memory)."""
    letters = "bcdfghjklmnpqrtvxz"  # no vowels: no stopwords, no plural endings

    def word(i: int) -> str:
        out = "w"
        while True:
            out, i = out + letters[i % 18], i // 18
            if not i:
                return out

    words = [word(i) for i in range(_ZIPF_WORDS)]
    ranks = np.minimum(np.random.default_rng(seed).zipf(1.15, n * _WORDS_PER_SENTENCE), _ZIPF_WORDS) - 1
    k = _WORDS_PER_SENTENCE
    return [" ".join(words[r] for r in ranks[i * k:(i + 1) * k].tolist()) + "." for i in range(n)]


def child_corpus(n: int, path: Path) -> dict:
    """Writes ``n`` synthetic sentences as documents into the tables file ``path``."""
    from hybridctx.datatypes import Document, Landmark
    from hybridctx.indexers.tables import DocumentTables

    tables = DocumentTables.create(path)
    texts = synthetic_sentences(n)
    for d in range(0, n, _SENTENCES_PER_DOC):
        doc_id, part = f"doc{d // _SENTENCES_PER_DOC}", texts[d:d + _SENTENCES_PER_DOC]
        marks, pos = [], 0
        for i, t in enumerate(part):
            marks.append(Landmark(doc_id, i, pos, pos + len(t)))
            pos += len(t) + 1
        tables.add_document(Document(doc_id, " ".join(part)), marks, [_WORDS_PER_SENTENCE] * len(part))
    tables.close()
    return {"bytes": path.stat().st_size}


def _bm25s_in_memory(tables, out: Path) -> tuple[int, int]:
    """The previous path: every (row, text) in a list, every sentence's term ids in lists, bm25s scoring."""
    import bm25s

    from hybridctx.indexers.lexical.bm25 import lexical_tokens

    pairs = list(tables.sentences())
    rows = np.fromiter((r for r, _ in pairs), dtype=np.int64, count=len(pairs))
    vocab: dict[str, int] = {}
    corpus_ids = [[vocab.setdefault(t, len(vocab)) for t in lexical_tokens(text)] for _, text in pairs]
    vocab.setdefault("", len(vocab))
    model = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    model.index((corpus_ids, vocab), show_progress=False, create_empty_token=False)
    for key in ("data", "indices", "indptr"):
        np.save(out / f"lexical.{key}.npy", model.scores[key], allow_pickle=False)
    np.save(out / "lexical.rows.npy", rows, allow_pickle=False)
    (out / "lexical.vocab.json").write_text(json.dumps(sorted(vocab, key=vocab.__getitem__)), encoding="utf-8")
    return len(vocab), len(model.scores["data"])


def child_lexical(path: str, tables_file: Path, out: Path) -> dict:
    from hybridctx.indexers.lexical.bm25 import LexicalIndex
    from hybridctx.indexers.tables import DocumentTables

    if path == "memory":
        import bm25s  # noqa: F401  (imported before the starting RSS is read, as the streaming path's modules are)
    tables = DocumentTables.open(tables_file)
    start = peak_rss_mb()
    started = time.perf_counter()
    if path == "memory":
        terms, postings = _bm25s_in_memory(tables, out)
    else:
        index = LexicalIndex.from_sentences(tables.sentences())
        index.save(out)
        terms, postings = len(index._vocab), len(index._data)
    return {"peak_rss_mb": peak_rss_mb(), "start_rss_mb": start, "build_s": time.perf_counter() - started,
            "terms": terms, "postings": postings}


def lexical_main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="memory-scale-bm25-", dir=args.workdir))
    runs = []
    try:
        for tokens in args.tokens:
            n = tokens // _WORDS_PER_SENTENCE
            tables_file = work / f"tables-{n}.sqlite"
            run_child(["corpus", str(n), str(tables_file)])
            for path in ("memory", "streaming"):
                out = work / f"{path}-{n}"
                out.mkdir()
                r = run_child(["lexical", path, str(tables_file), str(out)])
                runs.append({"path": path, "tokens": tokens, "sentences": n, **{k: round(v, 1) if isinstance(
                    v, float) else v for k, v in r.items()}})
                print(f"{tokens:,} tokens, {path}: peak {r['peak_rss_mb']:.0f} MB in {r['build_s']:.0f} s",
                      file=sys.stderr, flush=True)
                shutil.rmtree(out)
            tables_file.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = ["| BM25 build | tokens | sentences | terms | postings | peak RSS (MB) | RSS before (MB) "
             "| growth (MB) | build + save (s) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        lines.append(f"| {r['path']} | {r['tokens']:,} | {r['sentences']:,} | {r['terms']:,} | {r['postings']:,} | "
                     f"{r['peak_rss_mb']:,.0f} | {r['start_rss_mb']:,.0f} | "
                     f"{r['peak_rss_mb'] - r['start_rss_mb']:,.0f} | {r['build_s']:.1f} |")
    for path in ("memory", "streaming"):
        rows = [r for r in runs if r["path"] == path]
        if len(rows) > 1:
            a, b = rows[0], rows[-1]
            lines.append(f"{path}: corpus x{b['tokens'] / a['tokens']:.0f} -> peak RSS x"
                         f"{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}, growth above the start x"
                         f"{(b['peak_rss_mb'] - b['start_rss_mb']) / max(a['peak_rss_mb'] - a['start_rss_mb'], 1e-9):.2f}")
    print("\n".join(lines))
    if args.out:
        write_result(args.out, "memory_scale_lexical.json", {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
            "synthetic": f"{_WORDS_PER_SENTENCE} Zipf(1.15) pseudo-words per sentence over {_ZIPF_WORDS}",
            "runs": runs})
    return 0


# -- parent -------------------------------------------------------------------
def run_child(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def drop_cache(path: Path) -> None:
    """Evicts our own index files from the page cache, so the query process reads them from disk."""
    if not hasattr(os, "posix_fadvise"):
        return
    for file in path.iterdir():
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def exact_top(q: np.ndarray, n: int, dim: int, k: int) -> np.ndarray:
    """True top-k ids over the synthetic stream, computed chunk by chunk."""
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.full((len(q), k), -1, np.int64)
    for lo in range(0, n, 65536):
        m = min(65536, n - lo)
        s = q @ synthetic(lo, m, dim, seed=1).T
        all_s = np.concatenate([best_s, s], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(np.arange(lo, lo + m), s.shape)], axis=1)
        top = np.argsort(-all_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1)
    return best_i


def plot(results: dict, png: Path, metadata: dict[str, str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name in results["kinds"]:
        rows = [r for r in results["runs"] if r["name"] == name]
        tokens = [r["tokens"] for r in rows]
        axes[0].plot(tokens, [r["build_peak_rss_mb"] for r in rows], "o-", label=LABELS[name])
        axes[1].plot(tokens, [r["query_peak_rss_mb"] for r in rows], "o-", label=LABELS[name])
        axes[2].plot(tokens, [r["query_p50_ms"] for r in rows], "o-", label=LABELS[name])
    base = results["baseline_peak_rss_mb"]
    for ax, title in zip(axes, ["peak RSS, build + save (MB)", "peak RSS, load + 200 queries (MB)",
                                "query latency p50 (ms, k=10)"]):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("corpus tokens (1 landmark / 25 tokens, 384-d)")
        ax.set_title(title)
        if "RSS" in title:
            ax.axhline(base, color="grey", ls=":", lw=1, label="python + faiss imported")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110, metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--tokens-per-landmark", type=int, default=25)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--pq", type=int, default=32, help="PQ sub-quantizers (bytes per code)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None, help="where indexes are built (a disk, not tmpfs)")
    add_out_argument(parser, help="write memory_scale.json (or memory_scale_lexical.json) into this directory")
    parser.add_argument("--plot", action="store_true", help="also draw memory_scale.png into --out")
    parser.add_argument("--lexical", action="store_true", help="measure the BM25 build instead (in memory vs streaming)")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plot and args.out is None:
        parser.error("--plot needs --out DIR")

    if args.child:
        what, rest = args.child[0], args.child[1:]
        if what == "baseline":
            result = child_baseline()
        elif what == "corpus":
            result = child_corpus(int(rest[0]), Path(rest[1]))
        elif what == "lexical":
            result = child_lexical(rest[0], Path(rest[1]), Path(rest[2]))
        elif what == "build":
            result = child_build(rest[0], int(rest[1]), int(rest[2]), Path(rest[3]))
        else:
            result = child_query(Path(rest[0]), Path(rest[1]), int(rest[2]))
        print(json.dumps(result))
        return 0
    if args.lexical:
        return lexical_main(args)

    work = Path(tempfile.mkdtemp(prefix="memory-scale-", dir=args.workdir))
    try:
        runs = []
        baseline = run_child(["baseline"])["peak_rss_mb"]
        print(f"baseline (python + numpy + faiss + hybridctx imported): {baseline:.0f} MB", file=sys.stderr)
        for tokens in args.tokens:
            n = tokens // args.tokens_per_landmark
            q = synthetic(0, args.queries + 5, args.dim, seed=2)
            qfile = work / "queries.npy"
            np.save(qfile, q, allow_pickle=False)
            truth = exact_top(q[5:], n, args.dim, args.k)
            for name in args.kinds:
                kind = KINDS[name].format(nlist=args.nlist, m=args.pq)
                path = work / f"{name}-{n}"
                print(f"{tokens:,} tokens = {n:,} vectors, {kind}: building...", file=sys.stderr, flush=True)
                built = run_child(["build", kind, str(n), str(args.dim), str(path)])
                drop_cache(path)
                queried = run_child(["query", str(path), str(qfile), str(args.k)])
                found = np.asarray(queried["found"])
                recall = float(np.mean([len(set(f) & set(t)) / args.k for f, t in zip(found, truth)]))
                lat = queried["latency_ms"]
                size = sum(built["files"].values())
                exact_copy = built["files"].get("vectors.npy", 0)
                run = {
                    "name": name, "kind": kind, "tokens": tokens, "vectors": n,
                    "build_peak_rss_mb": round(built["peak_rss_mb"], 1), "build_s": round(built["build_s"], 1),
                    "query_peak_rss_mb": round(queried["peak_rss_mb"], 1), "load_s": round(queried["load_s"], 2),
                    "build_end_anon_mb": _round(built["anon_rss_mb"]),
                    "query_end_anon_mb": _round(queried["anon_rss_mb"]),
                    "query_p50_ms": round(statistics.median(lat), 3),
                    "query_p95_ms": round(float(np.percentile(lat, 95)), 3),
                    "recall_at_10": round(recall, 3), "index_bytes": size,
                    "bytes_per_token": round(size / tokens, 2),
                    "faiss_bytes_per_token": round((size - exact_copy) / tokens, 2),
                    "files": built["files"],
                }
                runs.append(run)
                print(f"  build peak {run['build_peak_rss_mb']:.0f} MB in {run['build_s']:.0f} s; query peak "
                      f"{run['query_peak_rss_mb']:.0f} MB, p50 {run['query_p50_ms']:.2f} ms, recall@10 "
                      f"{recall:.3f}; {run['bytes_per_token']:.1f} B/token", file=sys.stderr, flush=True)
                shutil.rmtree(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "synthetic": f"{args.dim}-d unit vectors around {_CENTRES} centres, 1 per {args.tokens_per_landmark} tokens",
        "baseline_peak_rss_mb": round(baseline, 1), "kinds": args.kinds, "runs": runs,
    }
    print(table(results))
    growth = growth_lines(results)
    print("\n".join(growth))
    results["growth"] = growth
    if args.out:
        write_result(args.out, "memory_scale.json", results, argv)
    if args.plot:
        plot(results, args.out / "memory_scale.png", figure_metadata(argv))
    return 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def table(results: dict) -> str:
    lines = ["| kind | tokens | vectors | peak RSS build (MB) | peak RSS query (MB) | anon RSS after queries (MB) "
             "| index B/token (FAISS files) | query p50 / p95 (ms) | recall@10 | build (s) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results["runs"]:
        anon = "n/a" if r["query_end_anon_mb"] is None else f"{r['query_end_anon_mb']:,.0f}"
        lines.append(f"| {LABELS[r['name']]} `{r['kind']}` | {r['tokens']:,} | {r['vectors']:,} | "
                     f"{r['build_peak_rss_mb']:,.0f} | {r['query_peak_rss_mb']:,.0f} | {anon} | "
                     f"{r['bytes_per_token']:.1f} ({r['faiss_bytes_per_token']:.1f}) | "
                     f"{r['query_p50_ms']:.2f} / {r['query_p95_ms']:.2f} | {r['recall_at_10']:.3f} | "
                     f"{r['build_s']:.0f} |")
    return "\n".join(lines)


def growth_lines(results: dict) -> list[str]:
    """Peak RSS growth between the smallest and largest corpus, per kind, against corpus growth."""
    out = []
    base = results["baseline_peak_rss_mb"]
    for name in results["kinds"]:
        rows = sorted((r for r in results["runs"] if r["name"] == name), key=lambda r: r["tokens"])
        if len(rows) < 2:
            continue
        a, b = rows[0], rows[-1]
        size = b["tokens"] / a["tokens"]
        for phase in ("build", "query"):
            key = f"{phase}_peak_rss_mb"
            over = (b[key] - base) / max(a[key] - base, 1e-9)
            out.append(f"{LABELS[name]}, {phase}: corpus x{size:.0f} -> peak RSS x{b[key] / a[key]:.2f} "
                       f"(above the {base:.0f} MB baseline: x{over:.2f})")
    return out


if __name__ == "__main__":
    sys.exit(main())
