"""Atomic index directories: manifest, checksums, versions, recovery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hybridctx.errors import (
    EncoderMismatchError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexVersionError,
)
from hybridctx.indexers.persistence import (
    FORMAT_NAME,
    check_encoder,
    read_manifest,
    recover,
    write_index_dir,
)


def writer(payload: bytes, extra: dict | None = None):
    def write(tmp: Path) -> dict:
        (tmp / "data.bin").write_bytes(payload)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "more.json").write_text('{"a": 1}')
        return extra or {}

    return write


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.") and p.is_dir())


def test_write_and_read(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    written = write_index_dir(target, writer(b"v1", {"counts": {"documents": 1}}), {"encoder": {"name": "e"}})
    manifest = read_manifest(target)
    assert manifest == written
    assert manifest["format"] == FORMAT_NAME and manifest["format_version"] == 1
    assert manifest["counts"] == {"documents": 1} and manifest["encoder"] == {"name": "e"}
    assert set(manifest["files"]) == {"data.bin", "sub/more.json"}
    assert manifest["files"]["data.bin"]["bytes"] == 2
    assert isinstance(manifest["library_version"], str) and manifest["created"]
    write_index_dir(target, writer(b"version two"))
    assert (target / "data.bin").read_bytes() == b"version two"
    assert siblings(target) == []


def test_failed_write_leaves_previous_index(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    write_index_dir(target, writer(b"v1"))

    def broken(tmp: Path) -> dict:
        (tmp / "data.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_index_dir(target, broken)
    assert (target / "data.bin").read_bytes() == b"v1"
    assert siblings(target) == []
    read_manifest(target)


def test_not_found_and_not_an_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match=r"no index at '.*nope/'; create one with: hybridctx index PATH --index"):
        read_manifest(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(IndexCorruptError, match="no manifest.json"):
        read_manifest(tmp_path / "plain")


@pytest.mark.parametrize(
    ("edit", "error", "pattern"),
    [
        (lambda m: "{not json", IndexCorruptError, "unreadable"),
        (lambda m: json.dumps({**m, "format": "other-index"}), IndexCorruptError, "not a hybridctx index"),
        (lambda m: json.dumps({**m, "format_version": 99}), IndexVersionError,
         r"was written by format 99; this hybridctx reads up to 1 — upgrade hybridctx"),
        (lambda m: json.dumps({**m, "format_version": "1"}), IndexCorruptError, "format_version"),
        (lambda m: json.dumps({**m, "files": {"../escape": {"sha256": "0", "bytes": 0}}}), IndexCorruptError, "bad file entry"),
    ],
)
def test_bad_manifests(tmp_path: Path, edit, error: type, pattern: str) -> None:
    target = tmp_path / "idx"
    write_index_dir(target, writer(b"v1"))
    (target / "manifest.sha256").unlink()  # as an index written before the digest: the parse checks
    manifest = json.loads((target / "manifest.json").read_text())
    (target / "manifest.json").write_text(edit(manifest))
    with pytest.raises(error, match=pattern):
        read_manifest(target)


def test_changed_missing_and_truncated_files(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    write_index_dir(target, writer(b"abcdef"))
    (target / "data.bin").write_bytes(b"abcdeF")  # same size, other bytes
    with pytest.raises(IndexCorruptError, match="'data.bin'.*SHA-256"):
        read_manifest(target)
    read_manifest(target, verify=False)
    (target / "data.bin").write_bytes(b"abc")
    with pytest.raises(IndexCorruptError, match="'data.bin'.*3 bytes"):
        read_manifest(target)
    (target / "data.bin").write_bytes(b"abcdef")
    read_manifest(target)
    (target / "sub" / "more.json").unlink()
    with pytest.raises(IndexCorruptError, match="sub/more.json"):
        read_manifest(target)


def test_recover_previous_version_after_crash_between_renames(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    write_index_dir(target, writer(b"v1"))
    os.rename(target, tmp_path / ".idx.old-123abc")  # first rename done, then the crash
    (tmp_path / ".idx.tmp-456def").mkdir()  # an unfinished new version: no manifest
    (tmp_path / ".idx.tmp-456def" / "data.bin").write_bytes(b"partial")
    assert read_manifest(target)["files"]["data.bin"]["bytes"] == 2
    assert (target / "data.bin").read_bytes() == b"v1"
    write_index_dir(target, writer(b"v2"))  # the next save clears what the crash left
    assert siblings(target) == []


def test_recover_prefers_the_finished_new_version(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    write_index_dir(target, writer(b"v1"))
    os.rename(target, tmp_path / ".idx.old-aaa")
    write_index_dir(tmp_path / "staging", writer(b"v2!"))
    os.rename(tmp_path / "staging", tmp_path / ".idx.tmp-bbb")
    assert recover(target) is True
    assert (target / "data.bin").read_bytes() == b"v2!"
    assert recover(target) is False


def test_check_encoder() -> None:
    manifest = {"encoder": {"name": "minilm", "dim": 384, "pooling": "mean", "window": 256}}
    check_encoder(manifest, {"name": "minilm", "dim": 384, "pooling": "mean", "window": 512})
    with pytest.raises(EncoderMismatchError, match=r"'minilm'.*'bge-m3'"):
        check_encoder(manifest, {"name": "bge-m3", "dim": 1024, "pooling": "cls"})
    with pytest.raises(EncoderMismatchError, match="pooling"):
        check_encoder(manifest, {"name": "minilm", "dim": 384, "pooling": "landmark"})
