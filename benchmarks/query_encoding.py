"""Query encoding on the CPU: PyTorch against ONNX Runtime on the packaged int8 export
and on the fp32 export of the loaded weights, with sleeping or spinning threads.

    HF_HUB_OFFLINE=1 python benchmarks/query_encoding.py --queries 100 [--busy 2] [--out DIR]

Each runtime encodes every query in a block of its own (p50 ms); right after each
ONNX run the same query goes through PyTorch once more ("PyTorch after"), where
threads still spinning after their run show up. Cosine is against PyTorch. The
questions are those of ``--dataset`` in ``--data`` (synthetic ones when it is missing);
``--out DIR`` also writes the table's numbers to ``DIR/query_encoding.json`` with the
command line and commit.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import add_data_argument, add_out_argument, write_result  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--dataset", default="leval", help="the folder of --data whose qa.jsonl gives the questions")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--busy", type=int, default=0, help="busy processes to run beside the measurement")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    args.questions = args.data / args.dataset / "qa.jsonl"
    args.argv = argv
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        return measure(args)
    finally:
        for burner in burners:
            burner.kill()


def measure(args: argparse.Namespace) -> int:

    import torch

    from hybridctx.embeddings import EncoderConfig, load_encoder
    from hybridctx.embeddings.onnx_export import fp32_export
    from hybridctx.embeddings.onnx_query import OnnxQueryEncoder, known_onnx_export

    if args.questions.is_file():
        lines = args.questions.read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()][: args.queries]
    else:
        questions = [f"What did the report say about item {i} and who approved it?" for i in range(args.queries)]
    encoder = load_encoder(EncoderConfig(query_runtime="torch", device="cpu"))  # windowed: its model is read below
    encoder.encode_queries(questions[:1])  # loads the model and tokenizer
    model = encoder._model  # the loaded transformers model the documents are encoded with
    seqs = [encoder._prefix + encoder._backend.encode(q, add_special_tokens=False).ids + encoder._suffix
            for q in questions]
    reference = encoder.encode_queries(questions)
    torch.set_num_threads(min(4, os.cpu_count() or 1))

    def torch_once(ids: list[int]) -> float:
        x = torch.tensor([ids])
        started = time.perf_counter()
        with torch.inference_mode():
            model(input_ids=x, attention_mask=torch.ones_like(x))
        return (time.perf_counter() - started) * 1000

    exports = {"int8 export (packaged)": known_onnx_export("all-MiniLM-L6-v2"),
               "fp32 export": fp32_export(model, "all-MiniLM-L6-v2")}
    for seq in seqs[:5]:  # warm-up
        torch_once(seq)
    alone = [torch_once(seq) for seq in seqs]
    rows: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {}
    # One runtime at a time, its session dropped before the next: threads that spin
    # must not touch another runtime's numbers.
    for name, path in exports.items():
        for spin in (False, True):
            if path is None:
                continue
            runtime = OnnxQueryEncoder(path, encoder.dim, spin=spin)
            for seq in seqs[:5]:
                runtime.hidden(seq)
            ms, mixed, after, cos = rows.setdefault(f"{name}, threads {'spin' if spin else 'sleep'}",
                                                    ([], [], [], []))
            for seq in seqs:  # alone
                started = time.perf_counter()
                runtime.hidden(seq)
                ms.append((time.perf_counter() - started) * 1000)
            for i, seq in enumerate(seqs):  # each query followed by a PyTorch call
                started = time.perf_counter()
                hidden = runtime.hidden(seq)
                mixed.append((time.perf_counter() - started) * 1000)
                after.append(torch_once(seq))
                vector = hidden.mean(axis=0)
                cos.append(float(vector @ reference[i] / np.linalg.norm(vector)))
            del runtime
            gc.collect()
    print(f"{len(seqs)} queries, median {statistics.median(len(s) for s in seqs):.0f} tokens; "
          f"{os.cpu_count()} cores, {args.busy} busy processes beside\n")
    print("| runtime | p50 ms alone | p50 ms beside PyTorch | PyTorch right after, p50 ms | min cosine vs PyTorch |\n"
          "| --- | ---: | ---: | ---: | ---: |")
    print(f"| PyTorch | {statistics.median(alone):.2f} | – | – | 1.0000 |")
    table = {"PyTorch": {"p50_ms_alone": statistics.median(alone)}}
    for name, (ms, mixed, after, cos) in rows.items():
        table[name] = {"p50_ms_alone": statistics.median(ms), "p50_ms_beside_pytorch": statistics.median(mixed),
                       "pytorch_after_p50_ms": statistics.median(after), "min_cosine": min(cos)}
        print(f"| {name} | {statistics.median(ms):.2f} | {statistics.median(mixed):.2f} | "
              f"{statistics.median(after):.2f} | {min(cos):.4f} |")
    if args.out is not None:
        write_result(args.out, "query_encoding.json", {
            "queries": len(seqs), "median_tokens": statistics.median(len(s) for s in seqs), "cpus": os.cpu_count(),
            "busy": args.busy, "runtimes": table}, args.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
