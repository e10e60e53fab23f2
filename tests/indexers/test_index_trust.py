"""An index from a stranger: loading it never runs code, and an edited manifest is caught.

The crafted stores are real: a Qdrant local-mode directory whose point row is a
pickle that creates a marker file when unpickled. A control opens it the way
hybridctx used to (qdrant-client's local mode) and proves the payload runs, so
the refusals below are refusals of something that would have executed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hybridctx.errors import IndexCorruptError, UntrustedStoreError

pytestmark = pytest.mark.heavy

pytest.importorskip("qdrant_client")

DOCS = [
    {"doc_id": "a", "text": "The lighthouse keeper counted ships every night. He wrote their names in a blue book."},
    {"doc_id": "b", "text": "Bees carry pollen between flowers. A hive can hold sixty thousand bees in summer."},
]


class _Payload:
    """Unpickling this creates the directory ``path`` (what an attacker's pickle would do)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hybridctx.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def faiss_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trust")
    docs = root / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    result = _run("index", str(docs), "--index", str(root / "idx"), "--no-progress")
    assert result.returncode == 0, result.stderr
    return root / "idx"


def _copy(index: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(index, dest)
    return dest


def _malicious_qdrant(location: Path, collection: str, marker: Path) -> None:
    """A real Qdrant local store whose one point unpickles into ``os.mkdir(marker)``."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(location))
    client.create_collection(collection, vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
    client.upsert(collection, [models.PointStruct(id=0, vector=[0.1] * 384, payload={})])
    client.close()
    db = location / "collection" / collection / "storage.sqlite"
    import pickle

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE points SET point = ?", (pickle.dumps(_Payload(str(marker))),))


def _point_manifest_at(index: Path, store: dict, *, keep_digest: bool = True) -> None:
    """Edits the manifest as an attacker would, recomputing its digest so only the trust rules can refuse it."""
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    manifest["store"] = store
    manifest["index"]["backend"] = store["kind"]
    manifest["next_row"] = manifest["counts"]["landmarks"]
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (index / "manifest.json").write_text(text, encoding="utf-8")
    if keep_digest:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        (index / "manifest.sha256").write_text(f"{digest}  manifest.json\n", encoding="ascii")
    else:
        (index / "manifest.sha256").unlink()


def test_the_crafted_store_really_runs_code(tmp_path: Path) -> None:
    """Control: opening the crafted store with qdrant-client runs the payload."""
    from qdrant_client import QdrantClient

    marker = tmp_path / "pwned"
    _malicious_qdrant(tmp_path / "evil.qdrant", "c", marker)
    try:
        QdrantClient(path=str(tmp_path / "evil.qdrant")).close()
    except Exception:  # the payload is not a point: the client fails after unpickling it
        pass
    assert marker.exists()


@pytest.mark.parametrize("where", ["inside", "absolute", "relative"])
def test_a_manifest_cannot_point_at_a_local_store(faiss_index: Path, tmp_path: Path, where: str) -> None:
    index = _copy(faiss_index, tmp_path / "idx")
    marker = tmp_path / "pwned"
    if where == "inside":  # the store ships inside the index directory itself
        location = index / "store"
        _malicious_qdrant(location, "c", marker)
        # an attacker lists its files so the listing check passes
        manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
        for path in sorted(p for p in location.rglob("*") if p.is_file()):
            manifest["files"][path.relative_to(index).as_posix()] = {
                "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        url = str(location)
    elif where == "absolute":
        location = tmp_path / "evil.qdrant"
        _malicious_qdrant(location, "c", marker)
        url = str(location)
    else:
        location = tmp_path / "evil.qdrant"
        _malicious_qdrant(location, "c", marker)
        url = "evil.qdrant"  # resolved against the working directory
    _point_manifest_at(index, {"kind": "qdrant", "url": url, "name": "c", "options": {},
                               "trust": "0" * 64})  # a forged tag
    result = _run("retrieve", "--index", str(index), "--budget", "100", "lighthouse", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert not marker.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not write for this user" in lines[0] and "--store-url" in lines[0]
    assert "Traceback" not in result.stderr


def test_untrusted_store_error_from_the_library(faiss_index: Path, tmp_path: Path) -> None:
    from hybridctx import HybridContext

    index = _copy(faiss_index, tmp_path / "idx")
    marker = tmp_path / "pwned"
    _malicious_qdrant(tmp_path / "evil.qdrant", "c", marker)
    _point_manifest_at(index, {"kind": "qdrant", "url": str(tmp_path / "evil.qdrant"), "name": "c"},
                       keep_digest=False)  # as an index written before the digest
    with pytest.raises(UntrustedStoreError, match="could run code"):
        HybridContext.open(index)
    assert not marker.exists()


def test_own_local_store_reopens_and_a_copied_tag_does_not_transfer(tmp_path: Path, monkeypatch) -> None:
    """A Qdrant local index this user built reopens; the same index under another user's key does not."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    index = tmp_path / "q.idx"
    built = _run("index", str(docs), "--index", str(index), "--store", "qdrant", "--no-progress")
    assert built.returncode == 0, built.stderr
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["store"]["trust"]) == 64
    ok = _run("retrieve", "--index", str(index), "--budget", "100", "--json", "lighthouse keeper")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["spans"][0]["doc_id"] == "a"
    stranger = {"HYBRIDCTX_CONFIG": str(tmp_path / "someone-else")}
    refused = _run("retrieve", "--index", str(index), "--budget", "100", "lighthouse", env=stranger)
    assert refused.returncode == 2 and "did not write for this user" in refused.stderr
    named = _run("retrieve", "--index", str(index), "--budget", "100", "--json", "--store-url",
                 manifest["store"]["url"], "lighthouse keeper", env=stranger)
    assert named.returncode == 0, named.stderr


def test_files_listing_cannot_be_switched_off(faiss_index: Path, tmp_path: Path) -> None:
    from hybridctx.indexers import LandmarkStore

    index = _copy(faiss_index, tmp_path / "idx")
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"] = {}
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (index / "manifest.sha256").unlink()
    with pytest.raises(IndexCorruptError, match="lists no files"):
        LandmarkStore.load(index)
    # one file dropped from the list (its checks with it) is named
    manifest["files"] = json.loads((faiss_index / "manifest.json").read_text(encoding="utf-8"))["files"]
    del manifest["files"]["vectors.npy"]
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="'vectors.npy' that its manifest.json does not list"):
        LandmarkStore.load(index, verify=False)


def test_a_link_inside_the_index_is_refused(faiss_index: Path, tmp_path: Path) -> None:
    from hybridctx.indexers import LandmarkStore

    index = _copy(faiss_index, tmp_path / "idx")
    (index / "lexical.vocab.json").unlink()
    (index / "lexical.vocab.json").symlink_to(faiss_index / "lexical.vocab.json")
    with pytest.raises(IndexCorruptError, match="link 'lexical.vocab.json'"):
        LandmarkStore.load(index)


def test_a_bit_flip_in_the_manifest_is_named(faiss_index: Path, tmp_path: Path) -> None:
    index = _copy(faiss_index, tmp_path / "idx")
    raw = bytearray((index / "manifest.json").read_bytes())
    at = raw.index(b'"lexical"') + 3
    raw[at] ^= 0x01
    (index / "manifest.json").write_bytes(bytes(raw))
    result = _run("retrieve", "--index", str(index), "--budget", "100", "lighthouse")
    assert result.returncode == 2
    assert "manifest.json" in result.stderr and "checksum" in result.stderr
    assert "lexical.vocab.json" not in result.stderr


def test_an_older_index_without_digest_still_loads(faiss_index: Path, tmp_path: Path) -> None:
    from hybridctx.indexers import LandmarkStore

    index = _copy(faiss_index, tmp_path / "idx")
    (index / "manifest.sha256").unlink()
    store = LandmarkStore.load(index)
    assert store.counts()["documents"] == 2
    store.close()
