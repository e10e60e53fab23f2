"""The GPU path, measured: encoding throughput, FAISS search on GPU vs CPU, and LLM prefill
time to calibrate the router's model profiles.

    python benchmarks/gpu.py --out docs/results [--model-dir DIR] [--quick]

* Encoding: the windowed landmark encoder over the bundled book (repeated),
  tokens per second at several ``batch_tokens`` (fp16 on CUDA, fp32 on the CPU).
* FAISS: one-query latency (p50, k=10) and batched throughput of ``Flat`` and
  ``IVF1024,PQ32`` over synthetic 384-d vectors, on the CPU and, when
  ``faiss.get_num_gpus() > 0``, on the GPU (``index_cpu_to_gpu``); plus the
  library's own ``FaissVectorIndex``, which moves itself to the GPU.
* Prefill (``--model-dir`` of a local causal LM): seconds to read a prompt of
  1k..32k tokens (capped by the model's window), fitted to the router's model
  ``n / prefill_tps * (1 + layers * n * hidden / params)``; prints a TOML
  profile snippet with the fitted ``prefill_tps`` (and a measured ``decode_tps``).

Without a GPU it prints ``no GPU: <reason>``, measures the CPU numbers on small
sizes, writes the JSON and exits 0. ``--quick`` shrinks every size (tests). The JSON is
``OUT/gpu.json``, with the command line and commit.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from _common import add_out_argument, write_result  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "hybridctx" / "samples" / "alice_in_wonderland.txt"


def gpu_status() -> tuple[bool, bool, list[str]]:
    """``(torch_cuda, faiss_gpu, reasons)``: what can run on a GPU here, and why not."""
    import faiss
    import torch

    reasons = []
    torch_cuda = torch.cuda.is_available()
    if not torch_cuda:
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hidden = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        reasons.append(f"torch {torch.__version__} ({build}{hidden}) sees no CUDA device")
    faiss_gpu = faiss.get_num_gpus() > 0
    if not faiss_gpu:
        if hasattr(faiss, "StandardGpuResources"):
            reasons.append(f"faiss-gpu {faiss.__version__} sees no GPU")
        else:
            reasons.append(f"faiss {faiss.__version__} is the CPU build (pip install 'hybridctx[gpu]' for faiss-gpu)")
    return torch_cuda, faiss_gpu, reasons


def device_facts(torch_cuda: bool) -> dict[str, Any]:
    import torch

    facts = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
             "torch": torch.__version__}
    if torch_cuda:
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return facts


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# -- encoding -------------------------------------------------------------------
def bench_encoding(device: str, batch_sizes: list[int], copies: int, max_chars: int | None) -> list[dict[str, Any]]:
    from hybridctx.datatypes import Document
    from hybridctx.embeddings import load_encoder
    from hybridctx.ingest.landmarks import landmarks_for

    text = SAMPLE.read_text(encoding="utf-8")[:max_chars]
    encoder = load_encoder({"device": device})
    max_tokens = max(8, min(128, (encoder.window - encoder.overlap) // 2))  # as indexing does
    docs, tokens = [], 0
    for i in range(copies):
        offsets, _ = encoder.token_offsets(text)
        item = landmarks_for(Document(f"copy{i}", text), offsets, max_tokens)
        docs.append((text, item.sentences))
        tokens += len(offsets)
    head = text[:2000]
    warm = landmarks_for(Document("warm", head), encoder.token_offsets(head)[0], max_tokens)
    encoder.encode_documents([(head, warm.sentences)], show_progress=False)  # load, warm up kernels
    rows = []
    for batch in batch_sizes:
        encoder.config = replace(encoder.config, batch_tokens=batch)  # read per call; no reload
        _sync(encoder.device)
        started = time.perf_counter()
        encoder.encode_documents(docs, show_progress=False)
        _sync(encoder.device)
        seconds = time.perf_counter() - started
        fp16 = encoder.config.fp16 if encoder.config.fp16 is not None else encoder.device.startswith("cuda")
        rows.append({"batch_tokens": batch, "tokens": tokens, "seconds": round(seconds, 3),
                     "tokens_per_s": round(tokens / seconds, 1), "device": encoder.device, "fp16": fp16})
        print(f"  encoding on {encoder.device}{' fp16' if fp16 else ''}, batch_tokens={batch}: "
              f"{tokens / seconds:,.0f} tokens/s", flush=True)
    return rows


# -- FAISS ----------------------------------------------------------------------
def _vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((1000, dim)).astype(np.float32)
    x = centres[rng.integers(0, 1000, n)] + rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _latency(search, q: np.ndarray, k: int, batch: int) -> dict[str, float]:
    for i in range(5):
        search(q[i : i + 1], k)
    times = []
    for i in range(5, len(q)):
        started = time.perf_counter()
        search(q[i : i + 1], k)
        times.append((time.perf_counter() - started) * 1000)
    big = np.ascontiguousarray(np.resize(q, (batch, q.shape[1])))
    started = time.perf_counter()
    search(big, k)
    return {"p50_ms": round(statistics.median(times), 3), "p95_ms": round(float(np.percentile(times, 95)), 3),
            "batch": batch, "batch_qps": round(batch / (time.perf_counter() - started), 1)}


def bench_faiss(
    n: int, n_queries: int, faiss_gpu: bool, quick: bool, dim: int = 384, k: int = 10
) -> list[dict[str, Any]]:
    import faiss

    from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex

    x = _vectors(n, dim, 1)
    q = _vectors(n_queries + 5, dim, 2)
    rows = []
    nlist = 1024 if n >= 100_000 else max(16, n // 100)
    pq = "PQ32x4" if quick else "PQ32"  # 4-bit codes train in a blink on a few thousand vectors
    for kind in ("Flat", f"IVF{nlist},{pq}"):
        index = faiss.index_factory(dim, kind, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(x[: min(n, 50 * nlist)])
        index.add(x)
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = 16
        where = [("cpu", index)]
        if faiss_gpu:
            resources = faiss.StandardGpuResources()
            where.append(("gpu", faiss.index_cpu_to_gpu(resources, 0, index)))
        for device, searchable in where:
            row = {"kind": kind, "vectors": n, "device": device, **_latency(searchable.search, q, k, 1024)}
            rows.append(row)
            print(f"  FAISS {kind} on {device}: p50 {row['p50_ms']:.3f} ms, {row['batch_qps']:,.0f} queries/s "
                  f"in batches of {row['batch']}", flush=True)
    library = FaissVectorIndex(dim, "Flat")  # the library's own path: GPU when FAISS sees one
    library.add(np.arange(n), x)
    row = {"kind": "FaissVectorIndex Flat", "vectors": n, "device": "gpu" if faiss_gpu else "cpu",
           **_latency(library.search, q, k, 1024)}
    rows.append(row)
    print(f"  hybridctx FaissVectorIndex Flat ({row['device']}): p50 {row['p50_ms']:.3f} ms", flush=True)
    return rows


# -- prefill --------------------------------------------------------------------
def bench_prefill(model_dir: Path, device: str, lengths: list[int], repeats: int) -> dict[str, Any]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    window = int(getattr(config, "max_position_embeddings", max(lengths)))
    lengths = [n for n in lengths if n <= window] or [window]
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    hidden = heads * head_dim
    vocab = int(config.vocab_size)
    rng = np.random.default_rng(0)
    points = []
    with torch.inference_mode():
        ids = torch.as_tensor(rng.integers(0, vocab, (1, 16)), device=device)
        model(input_ids=ids, use_cache=True)  # warm up
        for n in lengths:
            ids = torch.as_tensor(rng.integers(0, vocab, (1, n)), device=device)
            times = []
            for _ in range(repeats):
                _sync(device)
                started = time.perf_counter()
                model(input_ids=ids, use_cache=True)
                _sync(device)
                times.append(time.perf_counter() - started)
            points.append({"tokens": n, "seconds": round(min(times), 4), "tokens_per_s": round(n / min(times), 1)})
            print(f"  prefill {n:>6} tokens: {min(times):.3f} s ({n / min(times):,.0f} tokens/s)", flush=True)
        decode_tps = _decode_tps(model, device, vocab, rng)
    # The router: prefill_s = n / prefill_tps * (1 + layers * n * hidden / params); least squares in 1/tps.
    n = np.array([p["tokens"] for p in points], dtype=np.float64)
    t = np.array([p["seconds"] for p in points], dtype=np.float64)
    g = n * (1.0 + layers * n * hidden / params)
    prefill_tps = float((g @ g) / (g @ t))
    fitted = g / prefill_tps
    for point, f in zip(points, fitted):
        point["fitted_seconds"] = round(float(f), 4)
    kv_heads = int(getattr(config, "num_key_value_heads", heads))
    profile = {"params": params, "layers": layers, "hidden_size": hidden, "kv_heads": kv_heads,
               "head_dim": head_dim, "window": window, "prefill_tps": round(prefill_tps, 1),
               "decode_tps": round(decode_tps, 1),
               "max_relative_error": round(float(np.max(np.abs(fitted - t) / t)), 3)}
    return {"model_dir": str(model_dir), "device": device, "dtype": str(dtype).replace("torch.", ""),
            "points": points, "profile": profile}


def _decode_tps(model: Any, device: str, vocab: int, rng: np.random.Generator, new: int = 32) -> float:
    """Tokens per second generating after a 512-token prompt: ``generate`` of ``new`` tokens minus
    ``generate`` of one (the prefill), so the cache API of each transformers version is its own affair."""
    import torch

    ids = torch.as_tensor(rng.integers(0, vocab, (1, 512)), device=device)
    mask = torch.ones_like(ids)

    def run(tokens: int) -> float:
        _sync(device)
        started = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=tokens,
                       do_sample=False, pad_token_id=0)
        _sync(device)
        return time.perf_counter() - started

    run(2)  # warm up
    return (new - 1) / max(run(new) - run(1), 1e-9)


def toml_snippet(prefill: dict[str, Any], facts: dict[str, Any]) -> str:
    p = prefill["profile"]
    name = Path(prefill["model_dir"]).name.lower().replace("_", "-")
    where = facts.get("gpu") or f"{facts['cpus']} CPU cores"
    kind = "vllm" if prefill["device"].startswith("cuda") else "local"
    return "\n".join([
        f"[profiles.{name}-measured]",
        f'kind = "{kind}"',
        f'model = "{prefill["model_dir"]}"',
        f"window = {p['window']}",
        f'tokenizer = "{prefill["model_dir"]}"',
        f"params = {p['params']:.4g}",
        f"layers = {p['layers']}",
        f"hidden_size = {p['hidden_size']}",
        f"kv_heads = {p['kv_heads']}",
        f"head_dim = {p['head_dim']}",
        f"kv_dtype_bytes = {2 if prefill['dtype'] in ('float16', 'bfloat16') else 4}",
        f"# fitted to {len(prefill['points'])} prefill lengths, worst relative error {p['max_relative_error']:.0%}",
        f"prefill_tps = {p['prefill_tps']}",
        f"decode_tps = {p['decode_tps']}",
        f'notes = "measured by benchmarks/gpu.py on {where}, {prefill["dtype"]}, {_dt.date.today().isoformat()}"',
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_out_argument(parser, help="write gpu.json into this directory")
    parser.add_argument("--model-dir", type=Path, default=None, help="a local causal LM for the prefill fit")
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere (tests, smoke runs)")
    args = parser.parse_args(argv)

    torch_cuda, faiss_gpu, reasons = gpu_status()
    facts = device_facts(torch_cuda)
    if reasons:
        print(f"no GPU: {'; '.join(reasons)}. Measuring CPU numbers{' (small sizes)' if not torch_cuda else ''}.",
              flush=True)
    device = "cuda" if torch_cuda else "cpu"
    quick = args.quick or not torch_cuda
    results: dict[str, Any] = {"gpu": torch_cuda and faiss_gpu, "torch_cuda": torch_cuda, "faiss_gpu": faiss_gpu,
                               "no_gpu_reason": "; ".join(reasons) or None, "device": facts, "quick": quick}

    print("encoding:", flush=True)
    if args.quick:
        batches, copies, chars = [2048, 8192], 1, 6_000
    elif torch_cuda:
        batches, copies, chars = [4096, 8192, 16384, 32768, 65536], 8, None
    else:
        batches, copies, chars = [4096, 8192, 16384], 1, 60_000
    results["encoding"] = bench_encoding(device, batches, copies, chars)

    print("FAISS search:", flush=True)
    n = 5_000 if args.quick else 1_000_000 if faiss_gpu else 100_000
    results["faiss"] = bench_faiss(n, 50 if args.quick else 200, faiss_gpu, args.quick)

    if args.model_dir is None:
        results["prefill"] = {"skipped": "no --model-dir given"}
        results["toml"] = None
    else:
        print("prefill:", flush=True)
        lengths = [256, 512, 1024] if quick else [1024, 2048, 4096, 8192, 16384, 32768]
        results["prefill"] = bench_prefill(args.model_dir, device, lengths, 2 if quick else 3)
        results["toml"] = toml_snippet(results["prefill"], facts)
        print("\nrouter profile (add to your profiles TOML):\n" + results["toml"], flush=True)

    if args.out:
        print(f"wrote {write_result(args.out, 'gpu.json', results, argv)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
