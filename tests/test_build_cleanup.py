"""A new index whose build fails removes the collection it created in an external store.

Why: nothing names that collection once the build has failed (no manifest was written), so a
collection left behind would only take up the engine's space. Uses Qdrant's local mode (in
process, under tmp_path), the one external engine that needs no server.
"""

from __future__ import annotations

import pytest

from hybridctx.ingest import indexing

pytestmark = pytest.mark.slow  # qdrant-client's import and local mode: about 3 s


def test_a_failed_new_index_drops_the_collection_it_created(tmp_path, monkeypatch, encoder) -> None:
    pytest.importorskip("qdrant_client")
    doc = tmp_path / "notes.txt"
    doc.write_text("The meeting moved to Tuesday. The budget was approved in May.", encoding="utf-8")
    location = str(tmp_path / "qdrant")

    def fail(*args, **kwargs):
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(indexing, "index_documents", fail)
    with pytest.raises(RuntimeError, match="the disk filled up"):
        indexing.build_index([doc], tmp_path / "idx", encoder=encoder, store="qdrant", store_url=location)

    assert not (tmp_path / "idx" / "manifest.json").exists()
    # Local mode keeps each collection in <path>/collection/<name>/ (indexers/vectors/qdrant_store.py).
    collections = tmp_path / "qdrant" / "collection"
    assert collections.is_dir() and list(collections.iterdir()) == []
