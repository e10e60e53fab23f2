"""On-disk IVF-PQ (``"...,OnDisk"`` kinds): search quality, atomic save/load, deletion, clean stdout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridctx.datatypes import Document, Landmark
from hybridctx.errors import ConfigError
from hybridctx.indexers import FaissVectorIndex, LandmarkStore, create_backend, read_manifest
from hybridctx.indexers.vectors.local_vectors import load_local_vectors
from hybridctx.indexers.vectors.ondisk_ivf import IVFDATA_FILE, OnDiskIVFIndex, base_kind, on_disk_kind

pytestmark = pytest.mark.slow

faiss = pytest.importorskip("faiss")

DIM = 32
KIND = "IVF32,PQ16x4,OnDisk"  # 4-bit PQ trains in seconds; recall comes from re-ranking


def clustered(n: int, seed: int, centers: int = 64) -> np.ndarray:
    """Unit vectors around a few centres: structure that IVF can exploit, as real embeddings have."""
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(0).standard_normal((centers, DIM)).astype(np.float32)
    x = c[rng.integers(0, centers, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return {"x": clustered(6000, 1), "ids": np.arange(6000, dtype=np.int64) * 2 + 7, "q": clustered(50, 2)}


def test_kind_strings() -> None:
    assert on_disk_kind(None) == "IVF1024,PQ32,OnDisk"
    assert on_disk_kind("IVF64,PQ8") == "IVF64,PQ8,OnDisk" == on_disk_kind("IVF64,PQ8,OnDisk")
    assert base_kind("IVF64,PQ8,OnDisk") == "IVF64,PQ8"
    index = create_backend(None, DIM, KIND)  # the factory chooses the class; no class swaps itself
    assert type(index) is OnDiskIVFIndex and index.kind == KIND
    with pytest.raises(ConfigError, match="keeps its vectors on disk"):
        FaissVectorIndex(DIM, KIND)


def test_the_plain_class_refuses_an_on_disk_directory(tmp_path: Path) -> None:
    index = OnDiskIVFIndex(DIM, "IVF4,PQ4x4,OnDisk")
    index.add(np.arange(600), clustered(600, 5))
    index.save(tmp_path)
    with pytest.raises(ConfigError, match="load_backend"):
        FaissVectorIndex.load(tmp_path)
    assert type(load_local_vectors(tmp_path)) is OnDiskIVFIndex


@pytest.mark.parametrize("kind", ["Flat,OnDisk", "HNSW32,OnDisk"])
def test_non_ivf_kinds_are_refused(kind: str) -> None:
    with pytest.raises(ConfigError, match="needs an IVF kind"):
        create_backend(None, DIM, kind)


def test_gpu_is_refused() -> None:
    with pytest.raises(ConfigError, match="CPU"):
        create_backend(None, DIM, KIND, use_gpu=True)


def test_recall_vs_flat_and_same_as_in_memory(data: dict[str, np.ndarray]) -> None:
    x, ids, q = data["x"], data["ids"], data["q"]
    flat = FaissVectorIndex(DIM, "Flat")
    disk = OnDiskIVFIndex(DIM, KIND)
    for lo in range(0, len(ids), 1000):  # several adds, as documents arrive
        flat.add(ids[lo : lo + 1000], x[lo : lo + 1000])
        disk.add(ids[lo : lo + 1000], x[lo : lo + 1000])
    truth = flat.search(q, 10)[1]
    scores, found = disk.search(q, 10)
    r = recall(found, truth)
    print(f"{KIND}: recall@10 vs Flat on 6k clustered vectors = {r:.3f}")
    assert r >= 0.8
    # Scores are exact inner products (re-ranked from the stored vectors).
    rows = np.searchsorted(ids, found[:, 0])
    np.testing.assert_allclose(scores[:, 0], np.einsum("ij,ij->i", x[rows], q), atol=1e-5)
    # Trained on every vector, it is the in-memory IVF-PQ with its lists on disk.
    memory = FaissVectorIndex(DIM, base_kind(KIND))
    memory.add(ids, x)
    whole = OnDiskIVFIndex(DIM, KIND, train_size=len(ids))
    whole.add(ids, x)
    np.testing.assert_array_equal(whole.search(q, 10)[1], memory.search(q, 10)[1])


def _store_with_documents(x: np.ndarray, n_docs: int) -> LandmarkStore:
    store = LandmarkStore.create(DIM, KIND, encoder_identity={"name": "toy", "dim": DIM, "pooling": "mean"})
    per_doc = len(x) // n_docs
    for d in range(n_docs):
        text = "".join(f"Sentence {i} of document {d}. " for i in range(per_doc))
        starts = [text.index(f"Sentence {i} of") for i in range(per_doc)] + [len(text)]
        landmarks = [Landmark(f"doc{d}", i, starts[i], starts[i + 1], 0) for i in range(per_doc)]
        store.add_document(Document(f"doc{d}", text), landmarks, x[d * per_doc : (d + 1) * per_doc],
                           np.full(per_doc, 6))
    return store


def test_save_load_delete_through_index_directory(data: dict[str, np.ndarray], tmp_path: Path, capfd) -> None:
    x, q = data["x"], data["q"]
    store = _store_with_documents(x, n_docs=6)
    before = store.search_dense(q, 10)
    target = tmp_path / "index"
    manifest = store.save(target, lexical=False)
    out, _ = capfd.readouterr()
    assert out == ""  # FAISS's "resizing <file>" lines went to stderr, not stdout
    assert manifest["index"]["kind"] == KIND
    assert IVFDATA_FILE in manifest["files"] and "vectors.npy" in manifest["files"]
    assert not list(tmp_path.glob(".index.tmp-*"))  # the temporary sibling was swapped in
    read_manifest(target, verify=True)  # every checksum, the .ivfdata file's included

    loaded = LandmarkStore.load(target)
    assert isinstance(loaded.vectors, OnDiskIVFIndex) and len(loaded) == len(x)
    after = loaded.search_dense(q, 10)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_allclose(after[0], before[0], atol=1e-6)

    gone = loaded.rows_for_documents(["doc2"])
    loaded.delete_document("doc2")
    read_manifest(target, verify=True)  # changes go to work files, never into the saved index
    scores, rows = loaded.search_dense(q, 50)
    assert not np.isin(rows, gone).any()
    loaded.save(target, lexical=False)
    loaded.close()
    reopened = LandmarkStore.load(target)
    try:
        assert reopened.counts()["landmarks"] == len(x) - len(gone) == len(reopened)
        assert "doc2" not in reopened.doc_ids()
        assert not np.isin(reopened.search_dense(q, 50)[1], gone).any()
        assert not np.isin(reopened.vectors.ids(), gone).any()
    finally:
        reopened.close()
        store.close()


def test_add_after_load_then_save(data: dict[str, np.ndarray], tmp_path: Path) -> None:
    x, ids = data["x"], data["ids"]
    index = OnDiskIVFIndex(DIM, KIND)
    index.add(ids[:4000], x[:4000])
    index.save(tmp_path)
    loaded = OnDiskIVFIndex.load(tmp_path)
    loaded.add(ids[4000:], x[4000:])
    assert len(loaded) == len(ids)
    found = loaded.search(x[-3:], 10)[1]  # approximate: each vector among its own top 10
    assert all(i in row for i, row in zip(ids[-3:], found))
    again = tmp_path / "again"
    loaded.save(again)
    reread = OnDiskIVFIndex.load(again)
    np.testing.assert_array_equal(reread.ids(), ids)
    np.testing.assert_array_equal(reread.search(x[-3:], 10)[1], found)


def test_too_few_vectors_to_train(tmp_path: Path) -> None:
    index = OnDiskIVFIndex(DIM, KIND)
    index.add(np.arange(10), clustered(10, 3))
    with pytest.raises(ConfigError, match="needs at least"):
        index.save(tmp_path)


def test_cli_on_disk_keeps_json_stdout_clean(encoder, alice_text: str, tmp_path: Path, capfd) -> None:
    from hybridctx.cli import main

    source = tmp_path / "alice.txt"
    source.write_text(alice_text[:6000], encoding="utf-8")
    # IVF2,PQ4x4 trains on a few dozen sentences; the default IVF1024,PQ32 needs 1024+.
    code = main(["index", str(source), "--index", str(tmp_path / "idx"), "--kind", "IVF2,PQ4x4", "--on-disk",
                 "--device", "cpu", "--no-progress", "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    report = json.loads(out)  # nothing but the JSON report on stdout
    assert report["counts"]["landmarks"] > 16
    assert read_manifest(tmp_path / "idx")["index"]["kind"] == "IVF2,PQ4x4,OnDisk"
    assert main(["retrieve", "--index", str(tmp_path / "idx"), "--budget", "200", "--json", "the White Rabbit"]) == 0
    packed = json.loads(capfd.readouterr()[0])
    assert 0 < packed["tokens"] <= 200 and packed["spans"]


def test_empty_after_deleting_everything(tmp_path: Path) -> None:
    x = clustered(600, 4)
    index = OnDiskIVFIndex(DIM, "IVF4,PQ4x4,OnDisk")
    index.add(np.arange(600), x)
    index.search(x[:1], 3)  # trains and fills the on-disk lists
    assert index.remove(np.arange(600)) == 600
    index.save(tmp_path / "empty")  # no .ivfdata: FAISS cannot map an empty file
    loaded = OnDiskIVFIndex.load(tmp_path / "empty")
    assert len(loaded) == 0 and loaded.search(x[:1], 3)[1].tolist() == [[-1, -1, -1]]
    loaded.add(np.arange(600, 700), x[:100])
    assert loaded.search(x[:1], 3)[1][0, 0] == 600
