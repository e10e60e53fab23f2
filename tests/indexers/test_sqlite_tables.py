"""DocumentTables: rows never reused, vectorised lookups, backup round trip."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.datatypes import Document, Landmark
from hybridctx.errors import IndexCorruptError, InputError
from hybridctx.indexers.tables import DocumentTables


def doc_with_landmarks(doc_id: str, sentences: list[str], **kw: object) -> tuple[Document, list[Landmark]]:
    text, landmarks, pos = "", [], 0
    for i, s in enumerate(sentences):
        landmarks.append(Landmark(doc_id, i, pos, pos + len(s), paragraph=i // 2))
        text += s + " "
        pos = len(text)
    return Document(doc_id, text, **kw), landmarks  # type: ignore[arg-type]


def test_add_lookup_delete() -> None:
    t = DocumentTables.create()
    d1, l1 = doc_with_landmarks("a", ["One.", "Two two.", "三。"], title="A", metadata={"k": [1, "二"]}, source="a.txt")
    d2, l2 = doc_with_landmarks("b", ["Four.", "Five."])
    r1 = t.add_document(d1, l1, [1, 2, 3])
    r2 = t.add_document(d2, l2, np.array([4, 5]))
    assert r1.tolist() == [0, 1, 2] and r2.tolist() == [3, 4]
    assert t.text("a") == d1.text and t.document("a") == d1
    assert t.counts() == {"documents": 2, "landmarks": 5, "tokens": 15}
    assert t.hashes() == {"a": d1.content_hash, "b": d2.content_hash}
    assert t.doc_ids() == ["a", "b"]
    got = t.landmarks_for_rows(np.array([4, 0, 4, 2]))
    assert got.rows.tolist() == [4, 0, 4, 2]
    assert got.doc_ids.tolist() == ["b", "a", "b", "a"]
    assert got.tokens.tolist() == [5, 1, 5, 3]
    assert got.landmark(3) == l1[2]
    assert all(getattr(got, f).dtype == np.int64 for f in ("rows", "ordinals", "starts", "ends", "paragraphs", "tokens"))
    of_a = t.landmarks_of("a")
    assert [of_a.landmark(i) for i in range(len(of_a))] == l1
    assert t.rows_for(["b", "zzz", "a"]).tolist() == [0, 1, 2, 3, 4]
    assert t.delete_document("a").tolist() == [0, 1, 2]
    assert t.delete_document("a").tolist() == []
    with pytest.raises(KeyError):
        t.landmarks_for_rows([0])
    with pytest.raises(InputError):
        t.text("a")
    # Rows are never reused, even when the highest rows were deleted.
    t.delete_document("b")
    assert t.add_document(d1, l1, [1, 1, 1]).tolist() == [5, 6, 7]


def test_bad_documents_are_refused() -> None:
    t = DocumentTables.create()
    d, lms = doc_with_landmarks("a", ["One.", "Two."])
    with pytest.raises(InputError, match="token counts"):
        t.add_document(d, lms, [1])
    with pytest.raises(InputError, match="outside"):
        t.add_document(d, [Landmark("a", 0, 0, 999)], [1])
    with pytest.raises(InputError, match="given with document"):
        t.add_document(d, [Landmark("x", 0, 0, 1)], [1])
    with pytest.raises(InputError, match="JSON"):
        t.add_document(Document("c", "x", metadata={"f": object()}), [], [])
    t.add_document(d, lms, [1, 1])
    with pytest.raises(InputError, match="already"):
        t.add_document(d, lms, [1, 1])
    assert t.counts()["landmarks"] == 2


def test_read_only_open_copies_on_write(tmp_path: Path) -> None:
    t = DocumentTables.create()
    d, lms = doc_with_landmarks("a", ["One.", "Two."])
    t.add_document(d, lms, [1, 1])
    t.backup_to(tmp_path / "t.sqlite")
    before = (tmp_path / "t.sqlite").read_bytes()
    ro = DocumentTables.open(tmp_path / "t.sqlite")
    assert ro.text("a") == d.text
    d2, l2 = doc_with_landmarks("b", ["Three."])
    assert ro.add_document(d2, l2, [1]).tolist() == [2]
    assert ro.delete_document("a").tolist() == [0, 1]
    assert (tmp_path / "t.sqlite").read_bytes() == before  # the saved file is never written
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(IndexCorruptError):
        DocumentTables.open(tmp_path / "junk.sqlite")


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    docs=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=15), max_size=6),
        max_size=5,
    )
)
def test_backup_round_trip(tmp_path: Path, docs: dict[str, list[str]]) -> None:
    t = DocumentTables.create()
    for doc_id, sentences in docs.items():
        d, lms = doc_with_landmarks(doc_id, sentences, metadata={"n": len(sentences)})
        t.add_document(d, lms, list(range(len(lms))))
    path = tmp_path / f"{uuid.uuid4().hex}.sqlite"
    t.backup_to(path)
    back = DocumentTables.open(path)
    assert back.counts() == t.counts() and back.hashes() == t.hashes() and back.next_row() == t.next_row()
    for doc_id in docs:
        assert back.document(doc_id) == t.document(doc_id)
        a, b = back.landmarks_of(doc_id), t.landmarks_of(doc_id)
        assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    rows = [r for r, _ in t.sentences()]
    assert rows == sorted(rows) and dict(back.sentences()) == dict(t.sentences())
    back.close()
