"""LandmarkStore: updates keep tables/vectors/BM25 in step; saves survive crashes and corruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from store_helpers import DIM, toy_vector
from store_helpers import make as make_document

from hybridctx.datatypes import Document, Landmark
from hybridctx.errors import (
    EncoderMismatchError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexVersionError,
    InputError,
)
from hybridctx.indexers.landmark_store import LandmarkStore

pytestmark = pytest.mark.heavy

pytest.importorskip("faiss")

IDENTITY = {"name": "toy-encoder", "dim": DIM, "pooling": "mean", "window": 64}
DOCS = {
    "contract": ["The lease term is five years.", "Rent is due monthly.", "Either party may terminate with notice."],
    "notes": ["We met on Monday.", "The budget was approved.", "北京的会议推迟到下周。"],
    "novel": ["It was a dark and stormy night.", "长江的水很深。", "The end."],
}


def make(doc_id: str, sentences: list[str]) -> tuple[Document, list[Landmark], np.ndarray, list[int]]:
    """:func:`store_helpers.make`, each document titled after its id (this suite's documents carry titles)."""
    return make_document(doc_id, sentences, title=doc_id.title())


def build(docs: dict[str, list[str]] = DOCS, kind: str = "Flat") -> LandmarkStore:
    store = LandmarkStore.create(DIM, kind, encoder_identity=IDENTITY)
    for doc_id, sentences in docs.items():
        store.add_document(*make(doc_id, sentences))
    return store


def top_doc(store: LandmarkStore, sentence: str, **kw: object) -> str:
    _, rows = store.search_dense(toy_vector(sentence)[None, :], 1, **kw)
    return str(store.landmarks_for_rows(rows[0]).doc_ids[0])


def snapshot(store: LandmarkStore) -> dict:
    queries = np.stack([toy_vector(s) for ss in DOCS.values() for s in ss])
    return {
        "counts": store.counts(),
        "docs": {d: store.text(d) for d in store.doc_ids()},
        "dense": [a.tolist() for a in store.search_dense(queries, 4)],
        "lexical": [store.search_lexical(q, 3)[1].tolist() for q in ("lease term", "会议", "night", "budget")],
    }


def test_search_and_lookups() -> None:
    store = build()
    assert store.counts() == {"documents": 3, "landmarks": 9, "tokens": 35}
    scores, rows = store.search_dense(toy_vector("Rent is due monthly."), 3)
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    lm = store.landmarks_for_rows(rows[0, :1]).landmark(0)
    assert store.text(lm.doc_id)[lm.start : lm.end] == "Rent is due monthly."
    assert top_doc(store, "Rent is due monthly.", doc_ids=["novel"]) == "novel"
    _, rows = store.search_dense(toy_vector("The end."), 10, doc_ids=["notes"])
    assert set(store.landmarks_for_rows(rows[0][rows[0] >= 0]).doc_ids) == {"notes"}
    _, rows = store.search_lexical("会议在北京", 5)
    assert store.landmarks_for_rows(rows).doc_ids.tolist() == ["notes"]
    _, rows = store.search_lexical("the", 5, doc_ids=["contract"])
    assert len(rows) == 0  # stopword only
    _, rows = store.search_lexical("terminate notice", 5, doc_ids=["notes", "novel"])
    assert len(rows) == 0
    np.testing.assert_allclose(store.vectors_for_rows([1]), toy_vector("Rent is due monthly.")[None, :], atol=1e-6)
    with pytest.raises(InputError, match="no document 'missing'"):
        store.search_dense(toy_vector("x"), 1, doc_ids=["missing"])


def test_replace_delete_and_update_plan() -> None:
    store = build()
    plan = store.documents_to_update(
        [("contract", make("contract", DOCS["contract"])[0].content_hash), ("notes", "other-hash"), ("new", "h")]
    )
    assert plan.unchanged == ("contract",) and plan.changed == ("notes",) and plan.new == ("new",)
    assert plan.to_index == ("new", "notes")
    old_rows = store.rows_for_documents(["notes"])
    assert top_doc(store, "The budget was approved.") == "notes"
    assert store.search_lexical("budget", 1)[1].tolist() == [old_rows[1]]
    new_rows = store.add_document(*make("notes", ["The budget was rejected.", "Lunch followed."]))
    assert new_rows.min() > store.rows_for_documents(["novel"]).max()  # rows never reused
    assert not np.isin(store.search_dense(toy_vector("The budget was approved."), 9)[1], old_rows).any()
    assert top_doc(store, "Lunch followed.") == "notes"
    assert store.search_lexical("budget", 1)[1].tolist() == [new_rows[0]]
    assert store.counts()["landmarks"] == 8
    assert store.delete_document("contract").tolist() == [0, 1, 2]
    assert store.delete_document("contract").tolist() == []
    assert "contract" not in store.doc_ids() and len(store) == 5
    assert len(store.search_lexical("lease", 3)[1]) == 0
    _, rows = store.search_dense(toy_vector("The lease term is five years."), 10)
    assert not np.isin(rows, [0, 1, 2]).any()
    with pytest.raises(InputError, match="shape"):
        store.add_document(*make("bad", ["a", "b"])[:2], np.zeros((1, DIM), np.float32), [1, 1])
    assert "bad" not in store.doc_ids()


def test_update_plan_of_1000_documents_reads_the_hashes_in_one_query() -> None:
    store = LandmarkStore.create(DIM, encoder_identity=IDENTITY)
    docs = {f"d{i:04d}": [f"Sentence {i}."] for i in range(1000)}
    for doc_id, sentences in docs.items():
        store.add_document(*make(doc_id, sentences))
    incoming = [(d, make(d, s)[0].content_hash if i % 3 else "edited") for i, (d, s) in enumerate(docs.items())]
    incoming = incoming[200:] + [(f"n{i:04d}", "h") for i in range(200)]  # 800 known, 200 new
    statements: list[str] = []
    store._tables._conn.set_trace_callback(statements.append)
    plan = store.documents_to_update(iter(incoming))
    store._tables._conn.set_trace_callback(None)
    assert len(statements) == 1 and "json_each" in statements[0]  # one query, only these ids
    assert len(plan.new) == 200 and plan.new[0] == "n0000"
    assert plan.changed == tuple(d for i, (d, _) in enumerate(docs.items()) if i >= 200 and i % 3 == 0)
    assert len(plan.unchanged) == 800 - len(plan.changed) and plan.unchanged[0] == "d0200"
    assert store.documents_to_update([]) == type(plan)((), (), ())


@pytest.mark.parametrize("kind", ["Flat", "HNSW16"])
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    store = build(kind=kind)
    store.delete_document("novel")
    store.add_document(*make("novel", DOCS["novel"]))
    manifest = store.save(tmp_path / "idx")
    assert manifest["counts"] == store.counts() and manifest["encoder"] == IDENTITY
    assert manifest["index"]["kind"] == kind
    loaded = LandmarkStore.load(tmp_path / "idx", expected_encoder=IDENTITY)
    assert snapshot(loaded) == snapshot(store)
    read_only = LandmarkStore.load(tmp_path / "idx", mmap=True)
    read_only.save(tmp_path / "idx")  # replaces the files it has open; it keeps working
    assert snapshot(read_only) == snapshot(store)
    assert loaded.document("notes") == store.document("notes")
    # A loaded index keeps working: copy-on-write tables, rows continue, saves over itself.
    rows = loaded.add_document(*make("extra", ["One more sentence."]))
    assert rows.tolist() == [store.rows_for_documents(["novel"]).max() + 1]
    loaded.save(tmp_path / "idx")
    again = LandmarkStore.load(tmp_path / "idx")
    assert again.counts()["documents"] == 4 and top_doc(again, "One more sentence.") == "extra"


def test_no_pickle_in_saved_index(tmp_path: Path) -> None:
    build().save(tmp_path / "idx")
    names = sorted(p.name for p in (tmp_path / "idx").iterdir())
    assert {"manifest.json", "tables.sqlite", "vectors.faiss", "vectors.npy", "vector_ids.npy"} <= set(names)
    assert any(n.startswith("lexical.") for n in names)
    for path in (tmp_path / "idx").iterdir():
        head = path.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), path.name
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            assert arr.dtype != object
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))


def test_corruption_is_detected(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    build().save(target)
    vec = target / "vectors.npy"
    data = bytearray(vec.read_bytes())
    data[-5] ^= 0xFF
    vec.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="vectors.npy"):
        LandmarkStore.load(target)

    build().save(target)
    (target / "tables.sqlite").unlink()
    with pytest.raises(IndexCorruptError, match="tables.sqlite"):
        LandmarkStore.load(target)

    build().save(target)
    manifest = json.loads((target / "manifest.json").read_text())
    (target / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    (target / "manifest.sha256").unlink()  # as a newer writer's manifest would come with its own digest
    with pytest.raises(IndexVersionError, match="format 99"):
        LandmarkStore.load(target)

    build().save(target)
    with pytest.raises(EncoderMismatchError, match="'toy-encoder'.*'other'"):
        LandmarkStore.load(target, expected_encoder={"name": "other", "dim": 384, "pooling": "mean"})
    with pytest.raises(IndexNotFoundError):
        LandmarkStore.load(tmp_path / "nothing")


CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_landmark_store import make, DOCS
    from hybridctx.indexers.landmark_store import LandmarkStore
    from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex
    target = Path({target!r})
    store = LandmarkStore.load(target)
    store.add_document(*make("late", ["A late addition."]))
    store.delete_document("contract")
    if {where!r} == "write_files":
        real_save = FaissVectorIndex.save
        def dying_save(self, path):
            names = real_save(self, path)
            with open(Path(path) / "vectors.npy", "r+b") as fh:
                fh.truncate(100)
            os.kill(os.getpid(), signal.SIGKILL)
        FaissVectorIndex.save = dying_save
    else:
        real_rename = os.rename
        def dying_rename(src, dst):
            real_rename(src, dst)
            if ".old-" in str(dst):
                os.kill(os.getpid(), signal.SIGKILL)
        os.rename = dying_rename
    store.save(target)
    """
)


def crash_second_save(tmp_path: Path, where: str) -> dict:
    target = tmp_path / "idx"
    first = build()
    first.save(target)
    code = CRASH.format(tests=str(Path(__file__).parent), target=str(target), where=where)
    work = tmp_path / "work"  # the killed process cannot remove its BM25 work directory: keep it in tmp_path
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(work)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return snapshot(first)


def test_killed_while_writing_files_keeps_previous_index(tmp_path: Path) -> None:
    before = crash_second_save(tmp_path, "write_files")
    target = tmp_path / "idx"
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]  # the dead save's leftovers...
    loaded = LandmarkStore.load(target)  # ...are invisible to load
    assert snapshot(loaded) == before
    assert "late" not in loaded.doc_ids()
    loaded.save(target)  # and the next save clears them
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert left == ["idx", "work"]  # work: the killed process's TMPDIR


def test_killed_between_renames_recovers(tmp_path: Path) -> None:
    crash_second_save(tmp_path, "rename")
    target = tmp_path / "idx"
    assert not target.exists()
    loaded = LandmarkStore.load(target)  # the finished new version is moved into place
    assert "late" in loaded.doc_ids() and "contract" not in loaded.doc_ids()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_lexical_index_is_optional_on_disk(tmp_path: Path) -> None:
    from hybridctx.indexers.lexical.bm25 import TokenizerSettings

    settings = TokenizerSettings(stem=False, cjk_bigrams=False)
    store = LandmarkStore.create(DIM, encoder_identity=IDENTITY, lexical_settings=settings)
    for doc_id, sentences in DOCS.items():
        store.add_document(*make(doc_id, sentences))
    store.save(tmp_path / "idx", lexical=False)
    assert not list((tmp_path / "idx").glob("lexical.*"))
    loaded = LandmarkStore.load(tmp_path / "idx")
    assert loaded.lexical().settings == settings  # rebuilt on demand, same tokenizer
    assert loaded.search_lexical("budget", 1)[1].tolist() == store.search_lexical("budget", 1)[1].tolist()


def test_bm25_is_built_from_the_tables_stream_with_progress(tmp_path: Path) -> None:
    store = build()
    seen: list[int] = []
    store.save(tmp_path / "idx", progress=seen.append)
    assert sum(seen) == store.counts()["landmarks"] == 9
    loaded = LandmarkStore.load(tmp_path / "idx")
    assert loaded.search_lexical("budget", 1)[1].tolist() == store.search_lexical("budget", 1)[1].tolist()
    assert loaded.lexical(progress=seen.append) is loaded.lexical() and sum(seen) == 9  # loaded, not rebuilt
