"""Documents encoded by ONNX Runtime (the exact fp32 export) land where PyTorch puts them."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.embeddings import EncoderConfig, WindowedLandmarkEncoder
from hybridctx.embeddings.onnx_query import OnnxQueryEncoder, known_onnx_export
from hybridctx.embeddings.windowed import _length_batches
from hybridctx.errors import ConfigError
from hybridctx.ingest.segmentation import split_sentences

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def documents(alice_text: str) -> list[tuple[str, list[tuple[int, int]]]]:
    # Unequal lengths: several full windows, a short last window, a one-window text, a two-sentence note.
    texts = [alice_text[:12000], alice_text[20000:21000], alice_text[30000:34500], "A short note. It has two sentences."]
    return [(t, split_sentences(t)) for t in texts]


@pytest.fixture(scope="module")
def torch_side() -> WindowedLandmarkEncoder:
    return WindowedLandmarkEncoder(device="cpu", document_runtime="torch")


def _agree(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert [x.shape for x in a] == [y.shape for y in b]
    for x, y in zip(a, b):
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, x, atol=1e-5)
        assert (x * y).sum(axis=1).min() > 0.99999


@pytest.mark.parametrize("settings_", [{"context": "window"}, {"context": "mix"}, {"pooling": "landmark"}],
                         ids=["window", "mix-isolated-too", "landmark"])
def test_onnx_documents_equal_torch(documents, settings_) -> None:
    # A small batch so that batches mix windows of different lengths (right padding).
    torch_side = WindowedLandmarkEncoder(device="cpu", document_runtime="torch", **settings_)
    onnx_side = WindowedLandmarkEncoder(device="cpu", batch_tokens=1024, **settings_)
    want = torch_side.encode_documents(documents, show_progress=False)
    got = onnx_side.encode_documents(documents, show_progress=False)
    assert isinstance(onnx_side._onnx_docs, OnnxQueryEncoder) and torch_side._onnx_docs is False
    _agree(want, got)


def test_documents_use_the_fp32_export_that_serves_queries(documents, torch_side) -> None:
    enc = WindowedLandmarkEncoder(device="cpu")
    enc.encode_queries(["Who was late?"])
    got = enc.encode_documents(documents[1:2], show_progress=False)
    assert enc._onnx_docs is enc._onnx  # one session for both
    assert enc._onnx.path != known_onnx_export("all-MiniLM-L6-v2")  # not the packaged int8 file
    _agree(torch_side.encode_documents(documents[1:2], show_progress=False), got)


def test_a_quantised_query_export_never_encodes_documents(documents, torch_side) -> None:
    int8 = known_onnx_export("all-MiniLM-L6-v2")
    enc = WindowedLandmarkEncoder(device="cpu", query_onnx=str(int8))
    enc.encode_queries(["Who was late?"])
    got = enc.encode_documents(documents[1:2], show_progress=False)
    assert enc._onnx.path == int8 and enc._onnx_docs.path != int8
    _agree(torch_side.encode_documents(documents[1:2], show_progress=False), got)


def test_without_onnxruntime_documents_use_torch_and_say_why(documents, torch_side, monkeypatch, caplog) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    enc = WindowedLandmarkEncoder(device="cpu")
    with caplog.at_level(logging.INFO, logger="hybridctx.embeddings.windowed"):
        got = enc.encode_documents(documents[3:], show_progress=False)
    assert enc._onnx_docs is False
    assert "encoding documents with PyTorch: onnxruntime is not installed (pip install 'hybridctx[cpu]')" in caplog.text
    np.testing.assert_array_equal(got[0], torch_side.encode_documents(documents[3:], show_progress=False)[0])


def test_onnx_asked_for_but_unavailable_is_a_clear_error(documents, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    enc = WindowedLandmarkEncoder(device="cpu", document_runtime="onnx")
    with pytest.raises(ConfigError, match="document_runtime='onnx' but the onnx package, which exports the model, "
                                          "is not installed"):
        enc.encode_documents(documents[3:], show_progress=False)


def test_unknown_document_runtime_is_refused() -> None:
    with pytest.raises(ConfigError, match="document_runtime 'openvino' is not one of auto, torch, onnx"):
        EncoderConfig(document_runtime="openvino")  # type: ignore[arg-type]


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=60), st.integers(64, 4096))
def test_length_batches_cover_everything_once_with_little_padding(lengths, batch_tokens) -> None:
    batches = _length_batches(lengths, batch_tokens)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    heads = [lengths[b[0]] for b in batches]
    assert heads == sorted(heads, reverse=True)  # longest first
    for b in batches:
        longest = lengths[b[0]]
        assert longest == max(lengths[i] for i in b)
        assert len(b) == 1 or len(b) * longest <= batch_tokens  # padding counted
        assert min(lengths[i] for i in b) >= longest * 0.875  # at most 1/8 padding
