"""Indexing throughput: hybridctx (landmarks, overlapping windows, FAISS + BM25)
against LlamaIndex ingestion (SentenceSplitter chunks embedded with the same
model), and against the encoder's own forward pass over the corpus, on one
corpus, in one process. Prints tokens/s of each and the ratios.

    HF_HUB_OFFLINE=1 python benchmarks/index_throughput.py [--corpus FILE.jsonl|FILE.txt] [--repeat 3] [--out DIR]

Tokens are the encoder tokenizer's tokens of the corpus text (the same count
for every method), so a ratio compares work done per second on equal input.
The methods run in turn, in an order that rotates every round; each round's
ratio is printed, the table keeps each method's best round.

The encoder forward row is the ceiling: the corpus cut into consecutive
full windows (no overlap, no sentence boundaries), run through the runtime
hybridctx uses for documents, and nothing else. hybridctx reads more tokens
than that (its windows overlap and end at sentence boundaries; the read factor
is printed) and also segments, builds BM25 and FAISS, and saves the index.
The peer keeps LlamaIndex's own settings except the chunk size, which matches
the encoder (see ``PEER``). ``--out DIR`` writes every timing to ``DIR/index_throughput.json``
with the command line and commit.
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

from _common import add_out_argument, write_result  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "hybridctx" / "samples" / "alice_in_wonderland.txt"
# LlamaIndex's defaults (Settings.chunk_overlap 20, its tiktoken token counter, an in-memory
# SimpleVectorStore), with chunks of 256 tokens: the packaged MiniLM reads at most 256 (the
# default 1024-token chunks would be cut to a quarter), and batches of 32, sentence-transformers'
# own default (LlamaIndex's 10 only slows it).
PEER = {"chunk_size": 256, "chunk_overlap": 20, "embed_batch_size": 32}


def load_corpus(path: Path, max_chars: int) -> list[tuple[str, str]]:
    if path.suffix == ".jsonl":
        docs, total = [], 0
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            docs.append((rec["doc_id"], rec["text"]))
            total += len(rec["text"])
            if total >= max_chars:
                break
        return docs
    return [(path.name, path.read_text(encoding="utf-8")[:max_chars])]


def run_hybridctx(docs, encoder, out_dir: Path, in_forward: list[float] | None = None) -> float:
    """Seconds to index ``docs`` into a saved index; ``in_forward`` gets the seconds of them spent in
    the encoder's forward pass."""
    from hybridctx.datatypes import Document
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents

    forward, spent = encoder._forward, [0.0]

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return forward(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - began

    encoder._forward = timed
    encoder.forget_tokens()  # tokenising the corpus is part of indexing it: nothing remembered from before
    try:
        started = time.perf_counter()
        store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
        index_documents((Document(d, t) for d, t in docs), store, encoder, show_progress=False)
        store.save(out_dir)
        seconds = time.perf_counter() - started
    finally:
        del encoder._forward  # the method again
    if in_forward is not None:
        in_forward.append(spent[0])
    return seconds


def run_llamaindex(docs, model) -> float:
    from llama_index.core import Document as LlamaDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    from hybridctx.eval.llama_embedding import make_llama_embedding

    embed = make_llama_embedding(model, embed_batch_size=PEER["embed_batch_size"])
    started = time.perf_counter()
    splitter = SentenceSplitter(chunk_size=PEER["chunk_size"], chunk_overlap=PEER["chunk_overlap"])
    nodes = splitter.get_nodes_from_documents([LlamaDocument(text=t, doc_id=d) for d, t in docs])
    VectorStoreIndex(nodes, embed_model=embed, show_progress=False)
    return time.perf_counter() - started


def corpus_windows(docs, encoder) -> list[list[int]]:
    """Each document's tokens in consecutive full windows with the model's special tokens."""
    body = encoder.window - len(encoder._prefix) - len(encoder._suffix)
    seqs = []
    for _, text in docs:
        ids = encoder.token_offsets(text)[1].tolist()
        seqs += [encoder._prefix + ids[a : a + body] + encoder._suffix for a in range(0, len(ids), body)]
    return seqs


def run_forward(seqs, encoder, onnx) -> float:
    """The encoder's forward pass alone over ``seqs``, batched as hybridctx batches windows."""
    from hybridctx.embeddings.windowed import _length_batches

    started = time.perf_counter()
    for rows in _length_batches([len(s) for s in seqs], encoder._batch_tokens(onnx)):
        encoder._forward([seqs[i] for i in rows], onnx)
    return time.perf_counter() - started


def read_factor(docs, encoder) -> tuple[int, int, int, int]:
    """``(windows, tokens read, landmarks, tokens if trimmed)`` of hybridctx's window plans for the
    corpus; the last: were each window to end at its last whole sentence (the partial sentence
    after it is read again, whole, in the next window), what it would read."""
    from hybridctx.datatypes import Document
    from hybridctx.ingest.indexing import _max_landmark_tokens
    from hybridctx.ingest.landmarks import landmarks_for

    windows = read = landmarks = trimmed = 0
    for doc_id, text in docs:
        item = landmarks_for(Document(doc_id, text), encoder.token_offsets(text)[0], _max_landmark_tokens(encoder))
        prepared = encoder._prepare(text, item.sentences)
        plan, ranges = prepared["plan"], prepared["ranges"]
        windows += len(plan.windows)
        read += int((plan.windows[:, 1] - plan.windows[:, 0]).sum())
        landmarks += len(item.sentences)
        for w, (a, b) in enumerate(plan.windows.tolist()):
            owned = ranges[plan.assignment == w]
            trimmed += min(b, int(owned[:, 1].max())) - a if len(owned) else 0
    return windows, read, landmarks, trimmed


def peer_tokens(docs, model) -> tuple[int, int]:
    """``(chunks, encoder tokens the peer embeds)``: each chunk, specials included, cut at the model's limit."""
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(chunk_size=PEER["chunk_size"], chunk_overlap=PEER["chunk_overlap"])
    nodes = splitter.get_nodes_from_documents([LlamaDocument(text=t, doc_id=d) for d, t in docs])
    lengths = [len(ids) for ids in model.tokenizer([n.get_content() for n in nodes])["input_ids"]]
    return len(nodes), sum(min(n, model.max_seq_length) for n in lengths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SAMPLE)
    parser.add_argument("--max-chars", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the order of the methods rotates each round")
    parser.add_argument("--overlap", type=int, default=None, help="hybridctx window overlap (default: the encoder's)")
    parser.add_argument("--window-end", choices=["sentence", "length"], default=None,
                        help="where hybridctx's windows end (default: the encoder's)")
    parser.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                        help="hybridctx document runtime (default auto: ONNX Runtime on a CPU when installed)")
    parser.add_argument("--batch-tokens", type=int, default=None, help="hybridctx tokens per forward batch")
    parser.add_argument("--torch-forward", action="store_true",
                        help="also time the PyTorch forward pass over the corpus (the peer's runtime)")
    add_out_argument(parser, help="write every timing to index_throughput.json in this directory")
    args = parser.parse_args(argv)

    from hybridctx.embeddings import load_encoder as load_landmark_encoder
    from hybridctx.eval.llama_embedding import load_encoder

    docs = load_corpus(args.corpus, args.max_chars)
    settings = {"device": "cpu", "document_runtime": args.runtime}
    if args.overlap is not None:
        settings["overlap"] = args.overlap
    if args.window_end is not None:
        settings["window_end"] = args.window_end
    if args.batch_tokens is not None:
        settings["batch_tokens"] = args.batch_tokens
    encoder = load_landmark_encoder(settings)  # windowed: its ONNX export and windows are read below
    tokens = sum(len(encoder.token_offsets(t)[0]) for _, t in docs)
    model = load_encoder(None, device="cpu")
    # Warm both models (and make or load the ONNX export) so no run pays for loading.
    encoder.encode_queries(["warm up"])
    onnx = encoder._onnx_documents()
    model.encode(["warm up"])
    seqs = corpus_windows(docs, encoder)
    in_forward: list[float] = []
    runs = {"hybridctx": lambda i: run_hybridctx(docs, encoder, Path(tmp) / f"idx{i}", in_forward),
            "llamaindex": lambda i: run_llamaindex(docs, model),
            "forward": lambda i: run_forward(seqs, encoder, onnx)}
    if args.torch_forward:
        runs["forward-torch"] = lambda i: run_forward(seqs, encoder, None)
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name in names[i % len(names):] + names[: i % len(names)]:
                times[name].append(runs[name](i))
    best = {name: min(values) for name, values in times.items()}
    rate = {name: tokens / best[name] for name in names}
    windows, read, landmarks, trimmed = read_factor(docs, encoder)
    chunks, peer_read = peer_tokens(docs, model)

    runtime = "ONNX Runtime (fp32 export)" if onnx is not None else "PyTorch"
    print(f"corpus: {args.corpus.name}, {len(docs)} docs, {sum(len(t) for _, t in docs):,} chars, "
          f"{tokens:,} encoder tokens; {args.repeat} rounds, best of each kept")
    print(f"hybridctx: {encoder.identity['name']} window={encoder.window} overlap={encoder.overlap} "
          f"window_end={encoder.window_end} context={encoder.config.context}, documents by {runtime}, "
          f"{landmarks:,} landmarks, {windows:,} windows "
          f"reading {read:,} tokens ({read / tokens:.2f}x the corpus; {trimmed / tokens:.2f}x with each window ended at "
          "its last whole sentence)")
    print(f"peer: LlamaIndex SentenceSplitter(chunk_size={PEER['chunk_size']}, chunk_overlap={PEER['chunk_overlap']}) "
          f"+ VectorStoreIndex (in memory), sentence-transformers PyTorch, embed_batch_size={PEER['embed_batch_size']}, "
          f"{chunks:,} chunks embedding {peer_read:,} tokens ({peer_read / tokens:.2f}x the corpus)")
    print("| method | seconds (each round) | best | tokens/s |\n| --- | --- | ---: | ---: |")
    labels = {"hybridctx": "hybridctx index (landmarks, windows, FAISS+BM25, saved)",
              "llamaindex": "LlamaIndex SentenceSplitter + VectorStoreIndex",
              "forward": f"encoder forward alone over the corpus ({runtime})",
              "forward-torch": "encoder forward alone over the corpus (PyTorch)"}
    for name in names:
        each = " / ".join(f"{t:.1f}" for t in times[name])
        print(f"| {labels[name]} | {each} | {best[name]:.1f} | {rate[name]:,.0f} |")
    per_round = [li / hx for hx, li in zip(times["hybridctx"], times["llamaindex"])]
    of_forward = [fw / hx for hx, fw in zip(times["hybridctx"], times["forward"])]
    print(f"ratio hybridctx / LlamaIndex: {rate['hybridctx'] / rate['llamaindex']:.2f}x best-of "
          f"(rounds {min(per_round):.2f}-{max(per_round):.2f}x; target >= 1.2x)")
    print(f"hybridctx / encoder forward: {rate['hybridctx'] / rate['forward']:.0%} best-of "
          f"(rounds {min(of_forward):.0%}-{max(of_forward):.0%}; target >= 85%)")
    share = [f / t for f, t in zip(in_forward, times["hybridctx"])]
    print(f"share of hybridctx's indexing time in the forward pass of its own windows: "
          f"{min(share):.0%}-{max(share):.0%} (the rest: segmenting, tokenising, pooling, BM25, FAISS, saving)")
    if args.out is not None:
        write_result(args.out, "index_throughput.json", {
            "corpus": args.corpus.name, "docs": len(docs), "tokens": tokens, "identity": dict(encoder.identity),
            "runtime": runtime, "windows": windows, "tokens_read": read, "tokens_read_if_trimmed": trimmed,
            "landmarks": landmarks,
            "peer": dict(PEER, chunks=chunks, tokens_read=peer_read), "seconds": times,
            "hybridctx_forward_seconds": in_forward,
        }, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
