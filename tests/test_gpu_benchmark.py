"""benchmarks/gpu.py: a clear "no GPU" report and CPU numbers without one; GPU numbers with one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
KEYS = {"gpu", "torch_cuda", "faiss_gpu", "no_gpu_reason", "device", "quick", "encoding", "faiss", "prefill", "toml"}


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama saved like a real local model (no download)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-llm")
    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def run_benchmark(out: Path, *extra: str, hide_gpu: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if hide_gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def test_cpu_report_json_and_profile(tmp_path: Path, tiny_llm: Path) -> None:
    from hybridctx.routing.profiles import load_profiles

    done = run_benchmark(tmp_path / "out", "--model-dir", str(tiny_llm), hide_gpu=True)
    assert done.returncode == 0, done.stderr[-2000:]
    first = done.stdout.splitlines()[0]
    assert first.startswith("no GPU: ") and "sees no CUDA device" in first
    results = json.loads((tmp_path / "out" / "gpu.json").read_text(encoding="utf-8"))
    assert KEYS <= set(results)
    assert results["command"].startswith("python benchmarks/gpu.py --quick --out ") and results["commit"]
    assert results["gpu"] is False and results["no_gpu_reason"]
    assert [r["batch_tokens"] for r in results["encoding"]] == [2048, 8192]
    assert all(r["tokens_per_s"] > 0 and r["device"] == "cpu" and r["fp16"] is False for r in results["encoding"])
    assert {r["device"] for r in results["faiss"]} == {"cpu"} and all(r["p50_ms"] > 0 for r in results["faiss"])
    assert [p["tokens"] for p in results["prefill"]["points"]] == [256, 512, 1024]
    # The printed TOML is a profile the router accepts as it is.
    snippet = tmp_path / "measured.toml"
    snippet.write_text(results["toml"] + "\n", encoding="utf-8")
    profile = load_profiles(snippet)[f"{tiny_llm.name.lower().replace('_', '-')}-measured"]
    assert profile.prefill_tps == results["prefill"]["profile"]["prefill_tps"] > 0
    assert profile.layers == 2 and profile.window == 2048


@pytest.mark.gpu
def test_gpu_numbers(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    done = run_benchmark(tmp_path, hide_gpu=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "gpu.json").read_text(encoding="utf-8"))
    assert results["torch_cuda"] is True
    assert all(r["device"].startswith("cuda") and r["fp16"] is True for r in results["encoding"])
    if results["faiss_gpu"]:
        assert "gpu" in {r["device"] for r in results["faiss"]}
