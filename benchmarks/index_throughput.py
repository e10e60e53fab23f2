"""Indexing throughput: hybridctx (landmarks, overlapping windows, FAISS + BM25)
against LlamaIndex ingestion (SentenceSplitter chunks embedded with the same
model), on one corpus, in one process. Prints tokens/s of each and the ratio.

    HF_HUB_OFFLINE=1 python benchmarks/index_throughput.py [--corpus FILE.jsonl|FILE.txt] [--repeat 2]

Tokens are the encoder tokenizer's tokens of the corpus text (the same count
for both methods), so the ratio compares work done per second on equal input.
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

SAMPLE = Path(__file__).resolve().parents[1] / "hybridctx" / "samples" / "alice_in_wonderland.txt"


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


def run_hybridctx(docs, encoder, out_dir: Path) -> float:
    from hybridctx.datatypes import Document
    from hybridctx.indexers import LandmarkStore
    from hybridctx.indexing import index_documents

    started = time.perf_counter()
    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents((Document(d, t) for d, t in docs), store, encoder, show_progress=False)
    store.save(out_dir)
    return time.perf_counter() - started


def run_llamaindex(docs, model) -> float:
    from llama_index.core import Document as LlamaDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    from hybridctx.eval.llama_embedding import make_llama_embedding

    embed = make_llama_embedding(model)
    started = time.perf_counter()
    splitter = SentenceSplitter(chunk_size=256, chunk_overlap=20)
    nodes = splitter.get_nodes_from_documents([LlamaDocument(text=t, doc_id=d) for d, t in docs])
    VectorStoreIndex(nodes, embed_model=embed, show_progress=False)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SAMPLE)
    parser.add_argument("--max-chars", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=2, help="alternating runs; the best of each is kept")
    args = parser.parse_args(argv)

    from hybridctx.embeddings import WindowedLandmarkEncoder
    from hybridctx.eval.llama_embedding import load_encoder

    docs = load_corpus(args.corpus, args.max_chars)
    encoder = WindowedLandmarkEncoder(device="cpu")
    tokens = sum(len(encoder.token_offsets(t)[0]) for _, t in docs)
    model = load_encoder(None, device="cpu")
    # Warm both models so neither run pays for loading.
    encoder.encode_queries(["warm up"])
    model.encode(["warm up"])
    best = {"hybridctx": float("inf"), "llamaindex": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            best["hybridctx"] = min(best["hybridctx"], run_hybridctx(docs, encoder, Path(tmp) / f"idx{i}"))
            best["llamaindex"] = min(best["llamaindex"], run_llamaindex(docs, model))
    hx, li = tokens / best["hybridctx"], tokens / best["llamaindex"]
    print(f"corpus: {args.corpus.name}, {len(docs)} docs, {sum(len(t) for _, t in docs):,} chars, {tokens:,} encoder tokens")
    print(f"encoder: {encoder.identity['name']} window={encoder.window} overlap={encoder.overlap} "
          f"context={encoder.config.context}")
    print("| method | seconds | tokens/s |\n| --- | ---: | ---: |")
    print(f"| hybridctx index (landmarks, windows, FAISS+BM25, saved) | {best['hybridctx']:.1f} | {hx:,.0f} |")
    print(f"| LlamaIndex SentenceSplitter(256) + VectorStoreIndex | {best['llamaindex']:.1f} | {li:,.0f} |")
    print(f"ratio hybridctx / LlamaIndex: {hx / li:.2f}x (target >= 0.8x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
