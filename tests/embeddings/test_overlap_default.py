"""The window overlap default changed (window/4 -> window/8); an index keeps the overlap it was built with."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridctx.embeddings import WindowedLandmarkEncoder
from hybridctx.facade import HybridContext

pytestmark = pytest.mark.slow


def test_the_default_overlap_is_an_eighth_of_the_window() -> None:
    assert WindowedLandmarkEncoder(device="cpu").overlap == 32  # MiniLM: 256-token windows
    assert WindowedLandmarkEncoder(device="cpu", window=128).overlap == 16
    assert WindowedLandmarkEncoder(device="cpu", overlap=64).overlap == 64


def test_an_index_built_with_the_old_overlap_opens_and_updates_with_it(tmp_path, alice_text) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text(alice_text[:6000], encoding="utf-8")
    second.write_text(alice_text[6000:11000], encoding="utf-8")
    index = tmp_path / "old.idx"
    # What an older version wrote: the same encoder with 64-token overlap in its manifest.
    HybridContext.build([first], index, encoder={"overlap": 64, "device": "cpu"}, show_progress=False)
    assert json.loads((index / "manifest.json").read_text(encoding="utf-8"))["encoder"]["overlap"] == 64

    with HybridContext.open(index, device="cpu") as ctx:
        assert ctx.encoder.overlap == 64
        packed = ctx.retrieve("Where did the White Rabbit go?", 300)
        assert packed.spans and "Rabbit" in packed.context
        doc_ids = ctx.store.doc_ids()

    # An update with no encoder settings keeps the index's overlap, so old and new vectors agree.
    report = HybridContext.build([first, second], index, encoder={"device": "cpu"}, show_progress=False)
    assert report.encoder["overlap"] == 64 and len(report.added) == 1 and len(report.unchanged) == 1
    with HybridContext.open(index, device="cpu") as ctx:
        assert ctx.encoder.overlap == 64
        (added,) = set(ctx.store.doc_ids()) - set(doc_ids)
        lm = ctx.store.landmarks_of(added)
        text = ctx.store.text(added)
        stored = ctx.store.vectors_for_rows(lm.rows)
    sentences = list(zip(lm.starts.tolist(), lm.ends.tolist()))
    old = WindowedLandmarkEncoder(device="cpu", overlap=64).encode_documents([(text, sentences)])[0]
    new = WindowedLandmarkEncoder(device="cpu").encode_documents([(text, sentences)])[0]
    np.testing.assert_allclose(stored, old, atol=1e-5)
    assert np.abs(stored - new).max() > 1e-3  # the overlap matters for this document: it was kept on purpose

    fresh = HybridContext.build([first], tmp_path / "new.idx", encoder={"device": "cpu"}, show_progress=False)
    assert fresh.encoder["overlap"] == 32
