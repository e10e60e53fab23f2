"""The windowed landmark encoder with the real packaged MiniLM (and a random BERT for landmark pooling)."""

from __future__ import annotations

import numpy as np
import pytest

from hybridctx.embeddings import EncoderConfig, WindowedLandmarkEncoder
from hybridctx.errors import ConfigError
from hybridctx.ingest.segmentation import split_sentences

pytestmark = pytest.mark.slow

TEXT = (
    "Marie Curie was born in Warsaw in 1867. She moved to Paris to study physics. "
    "There she met Pierre, and they married in 1895. The couple discovered polonium and radium. "
    "Their work earned a Nobel Prize in 1903."
)


def test_isolated_vectors_equal_sentence_transformers(encoder) -> None:
    from sentence_transformers import SentenceTransformer

    iso = WindowedLandmarkEncoder(context="isolated", device="cpu", query_runtime="torch")
    sentences = split_sentences(TEXT)
    vecs = iso.encode_documents([(TEXT, sentences)])[0]
    model = SentenceTransformer(iso.spec.path, device="cpu")
    ref = model.encode([TEXT[a:b] for a, b in sentences], normalize_embeddings=True)
    np.testing.assert_allclose((vecs * ref).sum(1), 1.0, atol=1e-4)
    q = iso.encode_queries(["Where was Curie born?"])
    np.testing.assert_allclose(q[0] @ model.encode("Where was Curie born?", normalize_embeddings=True), 1.0, atol=1e-4)


def test_contextual_vectors_carry_context(encoder) -> None:
    sentences = split_sentences(TEXT)
    vecs = encoder.encode_documents([(TEXT, sentences)])[0]
    assert vecs.shape == (len(sentences), 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # "She moved to Paris" alone says nothing of Curie; read in context it does.
    iso = WindowedLandmarkEncoder(context="isolated", device="cpu")
    iso_vecs = iso.encode_documents([(TEXT, sentences)])[0]
    q = encoder.encode_queries(["Marie Curie moved to Paris"])[0]
    assert vecs[1] @ q > iso_vecs[1] @ q


def test_long_document_is_read_in_windows_and_batched_across_documents(encoder, alice_text) -> None:
    text = alice_text[:40000]
    sentences = split_sentences(text)
    short = "A short note. It has two sentences."
    out = encoder.encode_documents([(text, sentences), (short, split_sentences(short))], show_progress=False)
    assert out[0].shape[0] == len(sentences) and out[1].shape[0] == 2
    assert np.isfinite(out[0]).all()
    # A sentence's vector does not depend on documents batched beside it.
    alone = encoder.encode_documents([(short, split_sentences(short))])[0]
    np.testing.assert_allclose(alone, out[1], atol=1e-4)


def test_readable_ratio_flags_chinese_for_an_english_vocabulary(encoder) -> None:
    assert encoder.readable_ratio("Where is the rabbit hole?") == pytest.approx(1.0)
    assert encoder.readable_ratio("贾宝玉住在哪里？") < 0.5


def test_landmark_pooling_on_a_random_bert(tmp_path) -> None:
    from transformers import BertConfig, BertModel
    from transformers import AutoTokenizer
    from hybridctx.embeddings.models import resolve_model

    spec = resolve_model("default")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(spec.path).save_pretrained(tmp_path)
    enc = WindowedLandmarkEncoder(model=str(tmp_path), pooling="landmark", device="cpu")
    sentences = split_sentences(TEXT * 6)
    vecs = enc.encode_documents([(TEXT * 6, sentences)])[0]
    assert vecs.shape == (len(sentences), 32)
    assert enc.window == 128 and enc.identity["pooling"] == "landmark"
    assert np.isfinite(vecs).all()


def test_config_names_the_nearest_key() -> None:
    with pytest.raises(ConfigError, match="did you mean 'pooling'"):
        EncoderConfig.from_mapping({"poolng": "mean"})
    with pytest.raises(ConfigError, match="context 'chunks'"):
        EncoderConfig(context="chunks")  # type: ignore[arg-type]


def test_sentence_transformers_layout_with_a_subfolder_and_cls_pooling(tmp_path) -> None:
    import json

    from transformers import AutoTokenizer, BertConfig, BertModel

    from hybridctx.embeddings.models import resolve_model

    sub = tmp_path / "0_Transformer"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(sub)
    AutoTokenizer.from_pretrained(resolve_model("default").path).save_pretrained(sub)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    spec = resolve_model(str(tmp_path))
    assert spec.path == str(sub) and spec.sentence_pooling == "cls" and spec.max_positions == 64
    enc = WindowedLandmarkEncoder(model=str(tmp_path), device="cpu")
    assert enc.encode_queries(["a query"]).shape == (1, 32)


def test_flag_backend_names_its_extra_when_missing(monkeypatch) -> None:
    import sys

    from hybridctx.embeddings.registry import load_encoder
    from hybridctx.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "FlagEmbedding", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"hybridctx\[flag\]"):
        load_encoder({"model": "BAAI/bge-small-en-v1.5"}, backend="flag")
    with pytest.raises(ConfigError, match="no encoder backend 'nope'"):
        load_encoder(backend="nope")
