"""One suite, three vector stores: FAISS, PostgreSQL + pgvector (a real server), Qdrant (local mode).

Plumbing tests use fixed random vectors per sentence; retrieval is checked with
the real packaged encoder, through ``HybridContext`` and the CLI, and must give
the same spans on every store.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from store_helpers import DIM, make, require, toy_vector

from hybridctx.errors import ConfigError, IndexStoreError, InputError, MissingDependencyError
from hybridctx.indexers import ExternalVectors, LandmarkStore, StoreSpec, VectorStore
from hybridctx.indexers.vectors.store_registry import connect_store, redact_url

pytestmark = pytest.mark.heavy

KINDS = ["faiss", "pgvector", "qdrant"]
IDENTITY = {"name": "toy-encoder", "dim": DIM, "pooling": "mean"}
DOCS = {
    "contract": ["The lease term is five years.", "Rent is due monthly.", "Either party may terminate."],
    "notes": ["We met on Monday.", "The budget was approved.", "北京的会议推迟到下周。"],
    "novel": ["It was a dark and stormy night.", "长江的水很深。", "The end."],
}


def _spec(kind: str, request, tmp_path: Path) -> StoreSpec:
    if kind == "faiss":
        require("faiss")
        return StoreSpec()
    if kind == "pgvector":
        return StoreSpec("pgvector", request.getfixturevalue("pg_url"))
    require("qdrant_client")
    return StoreSpec("qdrant", str(tmp_path / "qdrant"))


@pytest.fixture(params=KINDS)
def spec(request, tmp_path) -> StoreSpec:
    """A fresh store location of each kind (pgvector: a new table on the session's server)."""
    return _spec(request.param, request, tmp_path)


@pytest.fixture(params=["pgvector", "qdrant"])
def external(request, tmp_path) -> StoreSpec:
    """The stores whose vectors live outside the index directory."""
    return _spec(request.param, request, tmp_path)


_OPEN: list[LandmarkStore] = []


@pytest.fixture(autouse=True)
def _close_stores():
    """Closes every store a test opened, even when it failed half way."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def load(path: Path) -> LandmarkStore:
    store = LandmarkStore.load(path)
    _OPEN.append(store)
    return store


def build(spec: StoreSpec, docs: dict[str, list[str]] = DOCS) -> LandmarkStore:
    store = LandmarkStore.create(DIM, encoder_identity=IDENTITY, store=spec)
    _OPEN.append(store)
    for doc_id, sentences in docs.items():
        store.add_document(*make(doc_id, sentences))
    return store


def top(store: LandmarkStore, sentence: str, k: int = 1, **kw) -> list[tuple[str, int]]:
    _, rows = store.search_dense(toy_vector(sentence), k, **kw)
    rows = rows[0][rows[0] >= 0]
    marks = store.landmarks_for_rows(rows)
    return [(str(d), int(o)) for d, o in zip(marks.doc_ids, marks.ordinals)]


def engine_count(store: LandmarkStore) -> int:
    vectors = store.vectors
    return vectors.engine.count() if isinstance(vectors, ExternalVectors) else len(vectors)


def snapshot(store: LandmarkStore) -> list:
    queries = np.stack([toy_vector(s) for ss in DOCS.values() for s in ss])
    scores, rows = store.search_dense(queries, 4)
    return [store.counts(), np.round(scores, 5).tolist(), rows.tolist()]


# -- plumbing -------------------------------------------------------------
def test_add_search_and_filter_by_document(spec) -> None:
    store = build(spec)
    assert isinstance(store.vectors, VectorStore) and store.store.kind == spec.kind
    scores, _ = store.search_dense(toy_vector("Rent is due monthly."), 3)
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5) and np.all(np.diff(scores[0]) <= 1e-6)
    for doc_id, sentences in DOCS.items():
        for ordinal, sentence in enumerate(sentences):
            assert top(store, sentence) == [(doc_id, ordinal)]
    hits = top(store, "Rent is due monthly.", k=5, doc_ids=["novel", "notes"])
    assert len(hits) == 5 and {d for d, _ in hits} == {"novel", "notes"}
    scores, rows = store.search_dense(toy_vector("The end."), 10, doc_ids=["novel"])
    assert sorted(rows[0, :3].tolist()) == [6, 7, 8] and np.all(np.diff(scores[0, :3]) <= 1e-6)
    assert (rows[0, 3:] == -1).all() and np.isneginf(scores[0, 3:]).all()
    with pytest.raises(InputError, match="no document 'missing'"):
        store.search_dense(toy_vector("The end."), 3, doc_ids=["missing"])
    np.testing.assert_allclose(store.vectors_for_rows([1]), toy_vector("Rent is due monthly.")[None], atol=1e-6)
    store.close()


def test_remove_and_replace_propagate_to_the_store(spec, tmp_path) -> None:
    store = build(spec)
    store.save(tmp_path / "idx")
    store.delete_document("notes")
    store.add_document(*make("contract", ["The lease was renewed.", "Rent doubled."]))
    assert top(store, "We met on Monday.", k=9)[0][0] != "notes"
    assert all(d != "notes" for d, _ in top(store, "We met on Monday.", k=9))
    assert top(store, "Rent doubled.") == [("contract", 1)]
    assert ("contract", 1) not in top(store, "Rent is due monthly.", k=1)
    assert store.counts()["landmarks"] == len(store.vectors) == 5
    store.save(tmp_path / "idx")
    assert engine_count(store) == 5  # the replaced and deleted vectors left the engine too
    store.close()


def test_saved_index_reopens_on_its_store(spec, tmp_path) -> None:
    store = build(spec)
    before = snapshot(store)
    manifest = store.save(tmp_path / "idx")
    store.close()
    assert manifest["store"]["kind"] == spec.kind == manifest["index"]["backend"]
    assert (tmp_path / "idx" / "vectors.faiss").exists() == (spec.kind == "faiss")
    reopened = load(tmp_path / "idx")
    assert snapshot(reopened) == before
    assert reopened.store.kind == spec.kind and reopened.store.name == spec.name
    reopened.close()


def test_failed_add_leaves_nothing_half_done(spec, tmp_path, monkeypatch) -> None:
    store = build(spec)
    store.save(tmp_path / "idx")
    before, held = snapshot(store), engine_count(store)
    if spec.kind == "faiss":
        from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex

        def boom(self, ids, vectors, doc_id=""):
            raise RuntimeError("injected failure")

        monkeypatch.setattr(FaissVectorIndex, "add", boom)
    else:  # the engine fails on the second batch, after the first was written
        module = __import__(f"hybridctx.indexers.vectors.{spec.kind}_store", fromlist=["_BATCH"])
        cls = module.PgVectorStore if spec.kind == "pgvector" else module.QdrantStore
        monkeypatch.setattr(module, "_BATCH", 2)
        original, calls = cls._write_batch, []

        def flaky(self, *args):
            calls.append(1)
            if len(calls) % 2 == 0:
                raise RuntimeError("injected failure")
            return original(self, *args)

        monkeypatch.setattr(cls, "_write_batch", flaky)
    new = ["The lease is void.", "Nobody pays rent.", "The landlord left.", "Keys were returned."]
    with pytest.raises((IndexStoreError, RuntimeError), match="injected failure"):
        store.add_document(*make("contract", new))  # a replacement: the old contract must survive
    with pytest.raises((IndexStoreError, RuntimeError), match="injected failure"):
        store.add_document(*make("brand-new", new))
    monkeypatch.undo()
    assert snapshot(store) == before and engine_count(store) == held
    assert store.text("contract").startswith("The lease term") and not store.has_document("brand-new")
    store.add_document(*make("brand-new", new))  # and the store still works afterwards
    assert top(store, "Keys were returned.") == [("brand-new", 3)]
    store.close()


def test_unsaved_update_is_invisible_and_cleaned_up(external, tmp_path) -> None:
    store = build(external)
    store.save(tmp_path / "idx")
    before = snapshot(store)
    store.add_document(*make("ghost", ["Boo.", "Unsaved sentence."]))
    store.delete_document("notes")
    store.close()  # the process "dies" before saving
    reader = load(tmp_path / "idx")
    assert snapshot(reader) == before  # rows of the unsaved session are filtered out
    assert engine_count(reader) == 11
    reader.add_document(*make("later", ["A later document."]))
    assert engine_count(reader) == 10  # the first write removed the dead session's vectors
    reader.save(tmp_path / "idx")
    reader.close()


def test_deletion_after_save_is_retried_when_the_engine_fails(external, tmp_path, monkeypatch, caplog) -> None:
    store = build(external)
    store.save(tmp_path / "idx")
    store.delete_document("notes")

    def down(ids):
        raise IndexStoreError("injected outage")

    monkeypatch.setattr(store.vectors.engine, "delete", down)
    store.save(tmp_path / "idx")  # the directory is saved; the engine keeps the vectors for now
    assert "injected outage" in caplog.text
    monkeypatch.undo()
    store.close()
    reader = load(tmp_path / "idx")
    assert engine_count(reader) == 9 and all(d != "notes" for d, _ in top(reader, "We met on Monday.", k=9))
    reader.add_document(*make("later", ["A later document."]))
    assert engine_count(reader) == 7
    reader.close()


def test_pgvector_concurrent_reader_and_writer(pg_url, tmp_path) -> None:
    spec = StoreSpec("pgvector", pg_url)
    store = build(spec)
    store.save(tmp_path / "idx")
    store.close()
    reader = load(tmp_path / "idx")  # its own connection
    baseline = snapshot(reader)
    started, added, reader_done = threading.Event(), threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        writer = None
        try:
            writer = LandmarkStore.load(tmp_path / "idx")  # a second connection, in this thread
            started.set()
            for i in range(40):
                writer.add_document(*make(f"new{i}", [f"Sentence {j} of new document {i}." for j in range(25)]))
            writer.add_document(*make("contract", ["The lease was renewed.", "Rent doubled."]))
            writer.delete_document("novel")
            added.set()
            reader_done.wait(60)
            writer.save(tmp_path / "idx")
        except BaseException as exc:  # reported to the main thread
            failures.append(exc)
        finally:
            started.set()
            added.set()
            if writer is not None:
                writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    started.wait(60)
    reads = 0
    while not added.is_set() or reads < 3:  # reads while the writer writes, and after it added
        assert snapshot(reader) == baseline  # never a row the reader's tables do not know
        reads += 1
    reader_done.set()
    thread.join()
    assert not failures, failures
    hits = top(reader, "It was a dark and stormy night.", k=9)  # old tables after the save: degraded, valid
    assert all(d in DOCS for d, _ in hits)
    reader.close()
    fresh = load(tmp_path / "idx")
    assert fresh.counts()["documents"] == 42 and not fresh.has_document("novel")
    assert top(fresh, "Rent doubled.") == [("contract", 1)]
    assert top(fresh, "Sentence 3 of new document 7.") == [("new7", 3)]
    assert engine_count(fresh) == fresh.counts()["landmarks"]
    fresh.close()


def test_pgvector_builds_its_hnsw_index_after_the_bulk_load(pg_url, tmp_path) -> None:
    def has_hnsw(store: LandmarkStore) -> bool:
        engine = store.vectors.engine
        return engine._conn.execute("SELECT to_regclass(%s) IS NOT NULL", (engine._table + "_hnsw",)).fetchone()[0]

    store = build(StoreSpec("pgvector", pg_url))
    assert not has_hnsw(store)  # rows were copied in without growing a graph row by row
    store.save(tmp_path / "idx")
    assert has_hnsw(store)
    store.add_document(*make("later", ["A later document."]))  # into the indexed table
    assert top(store, "A later document.") == [("later", 0)]
    searched = build(StoreSpec("pgvector", pg_url, options={"maintenance_work_mem": "32MB"}))
    assert top(searched, "The end.") == [("novel", 2)] and has_hnsw(searched)  # built before the first search


def test_pgvector_local_data_directory(pg_server, tmp_path) -> None:
    store = build(StoreSpec("pgvector", str(pg_server.pgdata)))
    manifest = store.save(tmp_path / "idx")
    store.close()
    assert manifest["store"]["url"] == str(pg_server.pgdata)
    reopened = load(tmp_path / "idx")
    assert top(reopened, "The end.") == [("novel", 2)]
    reopened.vectors.engine.drop()
    reopened.close()


# -- configuration ----------------------------------------------------------
def test_urls_are_written_without_secrets() -> None:
    assert redact_url("postgresql://bob:s3cret@db:5432/x?sslmode=require&password=p") == \
        "postgresql://bob@db:5432/x?sslmode=require"
    assert redact_url("https://q.example:6333?api_key=k") == "https://q.example:6333"
    assert redact_url("/var/lib/pg") == "/var/lib/pg"
    with pytest.raises(ConfigError, match="did you mean 'qdrant'"):
        StoreSpec("qdrnt", "x")
    with pytest.raises(ConfigError, match="needs a location"):
        StoreSpec("pgvector")


def test_missing_client_names_the_extra(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(__import__("sys").modules, "qdrant_client", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'hybridctx\[qdrant\]'"):
        connect_store(StoreSpec("qdrant", str(tmp_path / "q")), DIM, create=True)
    monkeypatch.setitem(__import__("sys").modules, "psycopg", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'hybridctx\[pgvector\]'"):
        connect_store(StoreSpec("pgvector", "postgresql://x@/y"), DIM, create=True)


def test_store_that_vanished_gives_a_clear_error(external, tmp_path) -> None:
    store = build(external)
    store.save(tmp_path / "idx")
    store.vectors.engine.drop()
    store.close()
    with pytest.raises(IndexStoreError, match="rebuild the index"):
        load(tmp_path / "idx")


def test_moved_store_reconnects_with_the_url_given_at_open(tmp_path) -> None:
    require("qdrant_client")
    store = build(StoreSpec("qdrant", str(tmp_path / "q1")))
    store.save(tmp_path / "idx")
    store.close()
    (tmp_path / "q1").rename(tmp_path / "q2")
    with pytest.raises(IndexStoreError, match="does not exist"):
        LandmarkStore.load(tmp_path / "idx")
    assert not (tmp_path / "q1").exists()  # nothing is created where a manifest points
    reopened = LandmarkStore.load(tmp_path / "idx", store_url=str(tmp_path / "q2"))
    _OPEN.append(reopened)
    assert top(reopened, "The end.") == [("novel", 2)]


# -- retrieval with the real encoder, through the API and the CLI ------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory, alice_text) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    parts = [alice_text[i * 2500:(i + 1) * 2500] for i in range(3)]
    lines = [{"doc_id": f"alice{i}", "text": t} for i, t in enumerate(parts)]
    lines.append({"doc_id": "notes", "text": "The meeting moved to Tuesday. Budget approved: 4.2 million dollars."})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def one_encoder(encoder, monkeypatch):
    """The session's real encoder wherever the facade and the CLI would load one (loading is slow here)."""
    import hybridctx.facade as facade

    def same(*args, **kwargs):
        return encoder

    monkeypatch.setattr(facade, "_encoder_for", same)
    monkeypatch.setattr(facade, "_encoder_from_identity", same)
    return encoder


QUERIES = [("Who was late, looking at a watch?", None), ("How much budget was approved?", None),
           ("What did Alice fall down?", ["alice0", "alice1"])]


def _spans(hc) -> list:
    out = []
    for mode in ("dense", "hybrid"):
        for query, doc_ids in QUERIES:
            packed = hc.retrieve(query, 300, doc_ids=doc_ids, mode=mode)
            out.append([(s.doc_id, s.start, s.end) for s in packed.spans])
    return out


def _location(kind: str, request) -> str | None:
    if kind == "pgvector":
        require("psycopg")
        return request.getfixturevalue("pg_url").replace("postgres:@", "postgres:s3cret@")
    require("faiss" if kind == "faiss" else "qdrant_client")
    return None  # faiss; qdrant: the default sibling directory DIR.qdrant


def _build_and_search(kind: str, corpus: Path, index: Path, request) -> list:
    from hybridctx.facade import HybridContext

    report = HybridContext.build(corpus, index, store=kind, store_url=_location(kind, request), show_progress=False)
    assert report.counts["documents"] == 4
    text = (index / "manifest.json").read_text(encoding="utf-8")
    assert "s3cret" not in text and json.loads(text)["store"]["kind"] == kind
    with HybridContext.open(index, device="cpu") as hc:  # reconnects from the manifest alone
        return _spans(hc)


@pytest.fixture(scope="module")
def faiss_spans(corpus, encoder, tmp_path_factory) -> list:
    with pytest.MonkeyPatch.context() as mp:
        import hybridctx.facade as facade

        mp.setattr(facade, "_encoder_for", lambda *a, **k: encoder)
        mp.setattr(facade, "_encoder_from_identity", lambda *a, **k: encoder)
        return _build_and_search("faiss", corpus, tmp_path_factory.mktemp("faiss") / "idx", None)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pgvector", "qdrant"])
def test_hybridcontext_finds_the_same_spans_on_every_store(kind, corpus, one_encoder, faiss_spans, request,
                                                           tmp_path) -> None:
    spans = _build_and_search(kind, corpus, tmp_path / "idx", request)
    assert spans == faiss_spans and all(spans)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pgvector", "qdrant"])
def test_cli_index_and_retrieve_work_the_same_on_every_store(kind, corpus, one_encoder, request, tmp_path,
                                                             capsys) -> None:
    from hybridctx.cli import main

    results = {}
    for store in ("faiss", kind):
        url = _location(store, request)
        args = ["index", str(corpus), "--index", str(tmp_path / store), "--store", store, "--no-progress"]
        assert main(args + (["--store-url", url] if url else [])) == 0
        assert main(["retrieve", "--index", str(tmp_path / store), "--budget", "300", "--json",
                     "Who was late, looking at a watch?"]) == 0
        results[store] = json.loads(capsys.readouterr().out.splitlines()[-1])["spans"]
    assert results[kind] == results["faiss"] and results["faiss"]
    if kind == "qdrant":
        assert (tmp_path / "qdrant.qdrant").is_dir()  # the default location beside the index
    assert main(["delete", "alice1", "--index", str(tmp_path / kind)]) == 0
    assert main(["index", str(corpus), "--index", str(tmp_path / kind), "--store", "faiss"]) == 2
    assert "keeps its vectors in" in capsys.readouterr().err


def test_pgvector_server_is_postgres_16_with_pgvector(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        extension = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    expected = os.environ.get("PGSERVER_POSTGRES_VERSION", "16")
    assert version.split(".")[0] == expected and extension is not None
