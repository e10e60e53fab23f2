"""Queries encoded by ONNX Runtime must land where PyTorch puts them."""

from __future__ import annotations

import numpy as np
import pytest

from hybridctx.embeddings import EncoderConfig, WindowedLandmarkEncoder
from hybridctx.embeddings.onnx_query import OnnxQueryEncoder, known_onnx_export
from hybridctx.errors import ConfigError

pytestmark = pytest.mark.slow

QUESTIONS = [
    "Where was Marie Curie born?",
    "What did the Hatter say about the raven and the writing-desk?",
    "Which clause of the agreement governs termination for convenience, and how much notice is needed?",
    "x",
]


def test_packaged_export_is_found() -> None:
    path = known_onnx_export("all-MiniLM-L6-v2")
    assert path is not None and path.suffix == ".onnx" and path.stat().st_size > 10_000_000


def test_onnx_queries_agree_with_torch(encoder) -> None:
    torch_side = WindowedLandmarkEncoder(EncoderConfig(query_runtime="torch", device="cpu"))
    onnx_side = WindowedLandmarkEncoder(EncoderConfig(query_runtime="onnx", device="cpu"))
    a, b = torch_side.encode_queries(QUESTIONS), onnx_side.encode_queries(QUESTIONS)
    assert isinstance(onnx_side._onnx, OnnxQueryEncoder)
    assert b.shape == (len(QUESTIONS), 384) and b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.998, cosines  # int8 weights: close, not identical
    # The ranking of landmarks by either query vector is the same for clearly different texts.
    docs = torch_side.encode_queries(["Curie was born in Warsaw.", "The Hatter asked a riddle.", "Notice of 30 days."])
    assert np.array_equal((a[:3] @ docs.T).argmax(1), (b[:3] @ docs.T).argmax(1))


def test_auto_uses_onnx_on_cpu(encoder) -> None:
    auto = WindowedLandmarkEncoder(EncoderConfig(device="cpu"))
    auto.encode_queries(["hello"])
    assert isinstance(auto._onnx, OnnxQueryEncoder)


def test_onnx_without_an_export_is_a_clear_error(tmp_path) -> None:
    enc = WindowedLandmarkEncoder(EncoderConfig(query_runtime="onnx", query_onnx=str(tmp_path / "missing.onnx"), device="cpu"))
    with pytest.raises(ConfigError, match="missing.onnx' does not exist"):
        enc.encode_queries(["hello"])


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ConfigError, match="query_runtime 'tensorrt' is not one of auto, torch, onnx"):
        EncoderConfig(query_runtime="tensorrt")  # type: ignore[arg-type]


def test_a_graph_of_the_wrong_width_is_refused() -> None:
    path = known_onnx_export("all-MiniLM-L6-v2")
    with pytest.raises(ConfigError, match=r"expected \(batch, seq, 768\)"):
        OnnxQueryEncoder(path, dim=768)


def test_queries_use_an_exact_fp32_export_made_once(tmp_path, monkeypatch) -> None:
    from hybridctx.embeddings.onnx_export import fp32_export

    monkeypatch.setenv("HYBRIDCTX_CACHE", str(tmp_path))
    torch_side = WindowedLandmarkEncoder(EncoderConfig(query_runtime="torch", device="cpu"))
    onnx_side = WindowedLandmarkEncoder(EncoderConfig(device="cpu"))
    a, b = torch_side.encode_queries(QUESTIONS), onnx_side.encode_queries(QUESTIONS)
    exported = list((tmp_path / "onnx").glob("*.onnx"))
    assert [onnx_side._onnx.path] == exported  # the export, not the packaged int8 file
    np.testing.assert_allclose((a * b).sum(axis=1), 1.0, atol=1e-5)  # exact, unlike int8
    made = exported[0].stat().st_mtime_ns
    assert fp32_export(onnx_side._model, "all-MiniLM-L6-v2") == exported[0]  # cached: not made again
    assert exported[0].stat().st_mtime_ns == made


def test_without_the_onnx_package_the_packaged_export_serves(tmp_path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    monkeypatch.setenv("HYBRIDCTX_CACHE", str(tmp_path))
    enc = WindowedLandmarkEncoder(EncoderConfig(device="cpu"))
    enc.encode_queries(["Where was Marie Curie born?"])
    assert enc._onnx.path == known_onnx_export("all-MiniLM-L6-v2")
    assert not (tmp_path / "onnx").exists()
