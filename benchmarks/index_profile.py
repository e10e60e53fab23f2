"""Where indexing spends its time: one hybridctx indexing run under cProfile.

    HF_HUB_OFFLINE=1 python benchmarks/index_profile.py [--corpus FILE.jsonl|FILE.txt] [--top 25] [--out DIR]

Prints the functions with the most cumulative time and the share of the run
spent in the encoder's forward pass and in pooling. This is how pooling was
found to take 14% of indexing *Alice* while torch and ONNX Runtime fought for
the cores (docs/encoders.md#indexing-speed-issue-12-deliverable-4). A short
warm-up document is indexed first so the ONNX export is not profiled.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_out_argument, write_result  # noqa: E402
from index_throughput import SAMPLE, load_corpus  # noqa: E402

# (label, file suffix, function name) of the stages reported as shares of the run
STAGES = [("forward pass", "embeddings/windowed.py", "_forward"), ("pooling", "embeddings/pooling.py", "pool_window"),
          ("structure pass", "ingest/structure.py", "extract_structure"), ("saving", "indexers/landmark_store.py", "save")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SAMPLE)
    parser.add_argument("--max-chars", type=int, default=400_000)
    parser.add_argument("--top", type=int, default=25, help="functions listed, by cumulative time")
    add_out_argument(parser, help="write the stage shares to index_profile.json in this directory")
    args = parser.parse_args(argv)

    from hybridctx.datatypes import Document
    from hybridctx.embeddings import load_encoder
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents

    docs = load_corpus(args.corpus, args.max_chars)
    encoder = load_encoder({"device": "cpu"})

    def build(documents, out: Path | None) -> None:
        store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
        index_documents((Document(d, t) for d, t in documents), store, encoder, show_progress=False)
        if out is not None:
            store.save(out)

    build([("warm-up", docs[0][1][:5000])], None)
    profile = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        profile.enable()
        build(docs, Path(tmp) / "idx")
        profile.disable()
        total = time.perf_counter() - started
    stats = pstats.Stats(profile)
    cumulative = {(path, name): entry[3] for (path, _, name), entry in stats.stats.items()}  # type: ignore[attr-defined]
    shares = {}
    for label, suffix, name in STAGES:
        seconds = sum(t for (path, fn), t in cumulative.items() if fn == name and path.endswith(suffix))
        shares[label] = seconds
    print(f"indexed {len(docs)} document(s), {sum(len(t) for _, t in docs):,} chars, in {total:.1f} s")
    for label, seconds in shares.items():
        print(f"  {label}: {seconds:.2f} s ({seconds / total:.0%})")
    stats.sort_stats("cumulative").print_stats(args.top)
    if args.out is not None:
        write_result(args.out, "index_profile.json", {"corpus": args.corpus.name, "seconds": total,
                                                      "stages": shares}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
