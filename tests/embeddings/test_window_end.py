"""Where windows end is part of an index's encoder: recorded, reopened, and absent in old manifests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridctx.embeddings import WindowedLandmarkEncoder
from hybridctx.embeddings.registry import encoder_from_manifest
from hybridctx.errors import ConfigError, IndexCorruptError
from hybridctx.facade import HybridContext

IDENTITY = {"name": "all-MiniLM-L6-v2", "dim": 384, "pooling": "mean", "context": "window", "mix_weight": None,
            "window": 256, "overlap": 32, "query_instruction": ""}


def test_an_identity_without_the_entry_is_an_index_whose_windows_end_at_the_length() -> None:
    assert encoder_from_manifest(IDENTITY, device="cpu").window_end == "length"
    # Even a recorded setting of None (the default, whichever it is) cannot override what the index was built with.
    old = {**IDENTITY, "backend": "transformers", "settings": {"model": "all-MiniLM-L6-v2", "window_end": None}}
    assert encoder_from_manifest(old, device="cpu").window_end == "length"
    assert encoder_from_manifest({**IDENTITY, "window_end": "sentence"}, device="cpu").window_end == "sentence"


def test_a_bad_recorded_window_end_is_refused_in_one_line() -> None:
    with pytest.raises(IndexCorruptError, match="window_end"):
        encoder_from_manifest({**IDENTITY, "window_end": 3}, device="cpu")
    with pytest.raises(IndexCorruptError, match="window_end 'middle'"):
        encoder_from_manifest({**IDENTITY, "window_end": "middle"}, device="cpu")
    with pytest.raises(ConfigError, match="window_end 'middle' is not one of sentence, length"):
        WindowedLandmarkEncoder(window_end="middle")


def test_the_identity_names_it_only_when_windows_end_at_sentences() -> None:
    assert "window_end" not in WindowedLandmarkEncoder(window_end="length").identity
    assert WindowedLandmarkEncoder(window_end="sentence").identity["window_end"] == "sentence"


@pytest.mark.slow
def test_an_index_keeps_where_its_windows_end(tmp_path, alice_text) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text(alice_text[:8000], encoding="utf-8")
    index = tmp_path / "idx"
    HybridContext.build([doc], index, encoder={"window_end": "sentence", "device": "cpu"}, show_progress=False)
    assert json.loads((index / "manifest.json").read_text(encoding="utf-8"))["encoder"]["window_end"] == "sentence"
    with HybridContext.open(index, device="cpu") as ctx:
        assert ctx.encoder.window_end == "sentence"
        (doc_id,) = ctx.store.doc_ids()
        lm = ctx.store.landmarks_of(doc_id)
        text = ctx.store.text(doc_id)
        stored = ctx.store.vectors_for_rows(lm.rows)
    sentences = list(zip(lm.starts.tolist(), lm.ends.tolist()))
    trimmed = WindowedLandmarkEncoder(device="cpu", window_end="sentence").encode_documents([(text, sentences)])[0]
    full = WindowedLandmarkEncoder(device="cpu", window_end="length").encode_documents([(text, sentences)])[0]
    np.testing.assert_allclose(stored, trimmed, atol=1e-5)
    # The cut sentence was right-hand context: without it the vectors of the windows' last landmarks move.
    moved = np.abs(stored - full).max(axis=1)
    assert moved.max() > 1e-3


@pytest.mark.parametrize(("card", "served"), [
    ({"base_model": "all-MiniLM-L6-v2", "window": 256}, "length"),  # a card from before the setting
    ({"base_model": "all-MiniLM-L6-v2", "window": 256, "window_end": "sentence"}, "sentence"),
    ({"base_model": "all-MiniLM-L6-v2", "window": 256, "window_end": "length"}, "length"),
])
def test_a_trained_model_serves_on_the_windows_it_was_trained_on(tmp_path, card, served) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 512}))
    (tmp_path / "hybridctx_training.json").write_text(json.dumps(card))
    assert WindowedLandmarkEncoder(model=str(tmp_path)).window_end == served
    # An explicit setting still wins.
    assert WindowedLandmarkEncoder(model=str(tmp_path), window_end="sentence").window_end == "sentence"


def test_new_indexes_end_windows_at_sentences_by_default() -> None:
    encoder = WindowedLandmarkEncoder()
    assert encoder.window_end == "sentence" and encoder.identity["window_end"] == "sentence"
