"""Every vector backend meets one protocol: save → load → search gives the same ids, close is
idempotent, describe has its fields; and indexes written before the protocol still load.

Backends: FAISS kinds (Flat, HNSW, IVF-PQ, auto), the on-disk IVF, the numpy fallback (FAISS
hidden from this process), Qdrant in local mode and pgvector on a real PostgreSQL server (heavy:
it starts one, see conftest.py). Vectors are fixed random unit vectors: plumbing, not semantics.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from store_helpers import DIM, make, require, toy_vector

from hybridctx.indexers import LandmarkStore, StoreSpec, VectorBackend, create_backend, load_backend
from hybridctx.indexers.persistence import read_manifest, write_index_dir
from hybridctx.indexers.vectors import local_vectors
from hybridctx.indexers.vectors.backend import DESCRIBE_KEYS, manifest_entries

N, DOCS = 240, 4  # 60 rows per document: enough to train IVF4,PQ4x4
OLD = Path(__file__).parent / "data" / "old_indexes"

LOCAL = {  # name -> kind, and the class the factory must choose
    "faiss-flat": ("Flat", "FaissVectorIndex"),
    "faiss-hnsw": ("HNSW16", "FaissVectorIndex"),
    "faiss-ivfpq": ("IVF4,PQ4x4", "FaissVectorIndex"),
    "faiss-auto": ("auto", "FaissVectorIndex"),
    "ondisk-ivf": ("IVF4,PQ4x4,OnDisk", "OnDiskIVFIndex"),
    "numpy": ("auto", "NumpyVectorIndex"),
}
BACKENDS = [*LOCAL, "qdrant", pytest.param("pgvector", marks=pytest.mark.heavy)]


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def no_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process behaves as an install without FAISS (the wheel test does it for real)."""
    monkeypatch.setattr(local_vectors, "faiss_available", lambda: False)


def _new_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> VectorBackend:
    if name == "numpy":
        request.getfixturevalue("no_faiss")
    elif name in LOCAL:
        require("faiss")
    if name == "qdrant":
        require("qdrant_client")
        return create_backend(StoreSpec("qdrant", str(tmp_path / "qdrant")), DIM)
    if name == "pgvector":
        url = request.getfixturevalue("pg_url").replace("postgres:@", "postgres:s3cret@")
        return create_backend(StoreSpec("pgvector", url), DIM)
    kind, cls = LOCAL[name]
    backend = create_backend(None, DIM, kind)
    assert type(backend).__name__ == cls  # the factory chose the class; nothing swapped itself
    return backend


def _save(backend: VectorBackend, target: Path, next_row: int) -> dict:
    """What LandmarkStore.save does for the vectors: the backend's files and entries, then ``saved``."""
    extra = {**manifest_entries(backend), "counts": {"landmarks": len(backend)}, "next_row": next_row}

    def write_files(directory: Path) -> None:
        assert backend.save(directory)  # the names of the files written

    manifest = write_index_dir(target, write_files, extra)
    backend.saved(next_row)
    return manifest


@pytest.mark.parametrize("name", BACKENDS)
def test_save_load_search_close_describe(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    x, q = unit(N, 1), unit(12, 2)
    ids = np.arange(N, dtype=np.int64)
    backend = _new_backend(name, request, tmp_path)
    loaded = None
    try:
        assert isinstance(backend, VectorBackend) and backend.dim == DIM and len(backend) == 0
        per_doc = N // DOCS
        for d in range(DOCS):  # one add per document, as the landmark store does
            rows = slice(d * per_doc, (d + 1) * per_doc)
            backend.add(ids[rows], x[rows], f"doc{d}")
        gone = ids[per_doc : per_doc + 7]
        assert backend.remove(gone) == 7 and len(backend) == N - 7
        scores, found = backend.search(q, 10, below=N)
        assert not np.isin(found, gone).any() and np.all(np.diff(scores, axis=1) <= 1e-6)
        mine = ids[2 * per_doc : 3 * per_doc]
        _, only = backend.search(q[:3], 5, mine, doc_ids=["doc2"], below=N)
        assert set(only.ravel()) <= set(mine.tolist())
        np.testing.assert_allclose(backend.vectors(ids[:2]), x[:2], atol=1e-6)

        facts = backend.describe()
        assert set(DESCRIBE_KEYS) <= set(facts)
        assert facts["dim"] == DIM and facts["count"] == N - 7 and facts["kind"] == backend.kind
        assert facts["backend"] == backend.spec.kind == ("faiss" if name in LOCAL else name)
        assert (facts["location"] is None) == (name in LOCAL)
        assert "s3cret" not in json.dumps(facts)

        manifest = _save(backend, tmp_path / "idx", next_row=N)
        assert manifest["index"]["backend"] == facts["backend"] and manifest["store"]["kind"] == facts["backend"]
        assert "s3cret" not in (tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8")
        after_save = backend.search(q, 10, below=N)[1]
        backend.close()  # before reopening: Qdrant's local mode locks its folder
        backend.close()  # idempotent
        loaded = load_backend(tmp_path / "idx")
        assert type(loaded) is type(backend) and loaded.kind == backend.kind and len(loaded) == N - 7
        got_scores, got = loaded.search(q, 10, below=N)
        np.testing.assert_array_equal(got, after_save)
        np.testing.assert_array_equal(got, found)
        np.testing.assert_allclose(got_scores, scores, atol=1e-5)
        assert loaded.describe()["count"] == N - 7
        loaded.drop()  # an engine's table or collection goes; files in the index directory stay
        if name in LOCAL:
            again = load_backend(tmp_path / "idx")
            assert len(again) == N - 7
            again.close()
    finally:
        for opened in (backend, loaded):
            if opened is not None:
                opened.close()
                opened.close()  # idempotent


def test_factory_refuses_what_the_install_cannot_build(no_faiss: None) -> None:
    from hybridctx.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"hybridctx\[cpu\]"):
        create_backend(None, DIM, "IVF4,PQ4x4,OnDisk")


# -- indexes written by an older version (tests/indexers/data/old_indexes, hybridctx at 5bf7a45) -----
IDENTITY = {"name": "toy-encoder", "dim": DIM, "pooling": "mean"}
OLD_DOCS = {f"doc{d}": [f"Sentence {i} of document {d} says {d * i} things." for i in range(12)] for d in range(4)}
OLD_KINDS = {"faiss_auto": "auto", "faiss_hnsw": "HNSW16", "ondisk_ivf": "IVF2,PQ4x4,OnDisk", "numpy_auto": "auto"}


@pytest.mark.parametrize("name", sorted(OLD_KINDS))
@pytest.mark.parametrize("faiss_installed", [True, False])
def test_an_index_written_before_the_backend_protocol_loads_and_searches(
        name: str, faiss_installed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if faiss_installed:
        require("faiss")
    else:
        monkeypatch.setattr(local_vectors, "faiss_available", lambda: False)
    index = tmp_path / name
    shutil.copytree(OLD / name, index)  # never opened in place: loading must not need to write
    store = LandmarkStore.load(index, IDENTITY)
    try:
        assert store.kind == OLD_KINDS[name] and store.counts()["landmarks"] == 48
        for doc_id, sentences in OLD_DOCS.items():
            for ordinal in (0, 7):
                _, rows = store.search_dense(toy_vector(sentences[ordinal]), 1)
                marks = store.landmarks_for_rows(rows[0])
                assert (str(marks.doc_ids[0]), int(marks.ordinals[0])) == (doc_id, ordinal)
        _, rows = store.search_lexical("document 3 says 21", 1)
        assert store.landmarks_for_rows(rows).doc_ids[0] == "doc3"
    finally:
        store.close()


@pytest.mark.parametrize("name", sorted(OLD_KINDS))
def test_todays_manifest_entries_are_those_an_older_version_wrote(name: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if name == "numpy_auto":
        monkeypatch.setattr(local_vectors, "faiss_available", lambda: False)
    else:
        require("faiss")
    store = LandmarkStore.create(DIM, OLD_KINDS[name], encoder_identity=IDENTITY)
    for doc_id, sentences in OLD_DOCS.items():
        store.add_document(*make(doc_id, sentences))
    manifest = store.save(tmp_path / "idx")
    store.close()
    old = read_manifest(OLD / name)
    for key in ("index", "store", "counts", "next_row", "encoder", "lexical", "format", "format_version"):
        assert manifest[key] == old[key], key
    assert sorted(manifest["files"]) == sorted(old["files"])
    shown = json.loads((tmp_path / "idx" / "vectors.json").read_text(encoding="utf-8"))
    recorded = json.loads((OLD / name / "vectors.json").read_text(encoding="utf-8"))
    assert set(shown) == set(recorded) and shown["kind"] == recorded["kind"]
