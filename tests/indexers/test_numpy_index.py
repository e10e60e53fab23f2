"""The exact numpy vector index (installs without FAISS): search, persistence, and both
directions of opening an index written by the other engine."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from hybridctx.errors import InputError, MissingDependencyError
from hybridctx.indexers.vectors import local_vectors
from hybridctx.indexers.vectors.numpy_index import NumpyVectorIndex
from hybridctx.indexers.vectors.protocol import VectorIndex


def unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def no_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process behaves as an install without FAISS (the wheel test does it for real)."""
    monkeypatch.setattr(local_vectors, "faiss_available", lambda: False)


def test_meets_protocol_and_searches_exactly() -> None:
    x, q = unit(3000, 24, 1), unit(70, 24, 2)  # 70 queries: more than one block of the scorer
    ids = np.arange(3000, dtype=np.int64) * 7 + 3
    index = NumpyVectorIndex(24)
    assert isinstance(index, VectorIndex)
    index.add(ids, x * 5)  # normalised on the way in
    scores, found = index.search(q, 10)
    truth = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10]
    assert np.array_equal(found, ids[truth])
    assert np.allclose(scores, np.take_along_axis(q @ x.T, truth, axis=1), atol=1e-5)
    allowed = ids[::5]
    _, only = index.search(q[:3], 4, allowed_ids=allowed)
    assert set(only.ravel()) <= set(allowed)
    index.remove(ids[truth[0, :1]])
    assert ids[truth[0, 0]] not in index.search(q[:1], 10)[1]
    assert len(index) == 2999


def test_pads_and_refuses_like_faiss() -> None:
    index = NumpyVectorIndex(4)
    scores, ids = index.search(unit(1, 4), 3)
    assert ids.tolist() == [[-1, -1, -1]] and np.isneginf(scores).all()
    index.add(np.array([1, 2]), unit(2, 4))
    assert index.search(unit(1, 4), 5)[1][0, 2:].tolist() == [-1, -1, -1]
    with pytest.raises(InputError, match="already in the index"):
        index.add(np.array([2]), unit(1, 4))
    with pytest.raises(InputError, match="shape"):
        index.add(np.array([3]), unit(1, 5))


def test_round_trip_and_faiss_reads_it(tmp_path: Path) -> None:
    x, ids = unit(500, 16, 3), np.arange(500, dtype=np.int64)
    index = NumpyVectorIndex(16, "auto")
    index.add(ids, x)
    assert sorted(index.save(tmp_path)) == ["vector_ids.npy", "vectors.json", "vectors.npy"]
    assert json.loads((tmp_path / "vectors.json").read_text())["engine"] == "numpy"
    again = NumpyVectorIndex.load(tmp_path)
    q = unit(5, 16, 4)
    assert np.array_equal(again.search(q, 8)[1], index.search(q, 8)[1])
    pytest.importorskip("faiss")
    built = local_vectors.load_local_vectors(tmp_path)  # FAISS, built from vectors.npy
    assert type(built).__name__ == "FaissVectorIndex" and built.kind == "auto"
    assert np.array_equal(built.search(q, 8)[1], index.search(q, 8)[1])


def test_a_faiss_index_of_any_kind_opens_without_faiss(tmp_path: Path, no_faiss: None,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("faiss")
    from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex

    x, ids = unit(800, 16, 5), np.arange(800, dtype=np.int64) + 10
    hnsw = FaissVectorIndex(16, "HNSW32")
    hnsw.add(ids, x)
    hnsw.save(tmp_path)
    with caplog.at_level(logging.INFO, logger="hybridctx.indexers.vectors.local_vectors"):
        opened = local_vectors.load_local_vectors(tmp_path)
    assert isinstance(opened, NumpyVectorIndex) and opened.kind == "HNSW32"
    assert "hybridctx[cpu]" in caplog.text
    q = unit(6, 16, 6)
    exact = ids[np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :5]]
    assert np.array_equal(opened.search(q, 5)[1], exact)


def test_without_faiss_only_exact_kinds_are_built(no_faiss: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hybridctx.indexers.vectors.local_vectors"):
        assert isinstance(local_vectors.create_local_vectors(8, "auto"), NumpyVectorIndex)
    assert "faiss is not installed" in caplog.text and "hybridctx[cpu]" in caplog.text
    assert isinstance(local_vectors.create_local_vectors(8, "Flat"), NumpyVectorIndex)
    with pytest.raises(MissingDependencyError, match=r"index kind 'HNSW32'.*hybridctx\[cpu\]"):
        local_vectors.create_local_vectors(8, "HNSW32")


def test_an_index_built_without_faiss_retrieves_and_reopens_with_it(tmp_path: Path, encoder,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from hybridctx import HybridContext

    doc = tmp_path / "notes.txt"
    doc.write_text("The lighthouse keeper kept a ledger of ships. Storms came every winter. "
                   "The vault combination is 7291, written under the third stair. "
                   "Gulls nested on the rocks below the lamp.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    monkeypatch.setattr(local_vectors, "faiss_available", lambda: False)
    HybridContext.build([doc], index_dir, encoder=encoder, show_progress=False)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["index"]["engine"] == "numpy" and not (index_dir / "vectors.faiss").exists()
    with HybridContext.open(index_dir) as hc:
        assert "7291" in hc.retrieve("what is the vault combination?", budget=40, mode="dense").context
    pytest.importorskip("faiss")
    monkeypatch.undo()
    with HybridContext.open(index_dir) as hc:  # FAISS now: built from the exact vectors
        assert type(hc.store.vectors).__name__ == "FaissVectorIndex"
        assert "7291" in hc.retrieve("what is the vault combination?", budget=40, mode="dense").context
