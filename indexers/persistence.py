"""Atomic saves and checked loads of an index directory.

Why: an index may be rebuilt while readers use it, a save may be killed half
way, and an index may come from someone else. A save therefore writes into a
hidden sibling directory, fsyncs every file, writes ``manifest.json`` (with a
SHA-256 of every file) last, and only then swaps the directory into place with
two renames. A crash at any point leaves either the previous index or the new
one, never a mixture; a crash between the two renames is repaired by the next
reader (:func:`recover`). Loading refuses unknown formats, newer versions and
files whose size or checksum changed.

One writer per index directory at a time: a save holds the advisory lock of
:mod:`writer_lock`; an update holds it from before it loads the old index
until its save is in place, and the save here re-enters it.

Trust (an index may come from a stranger): ``manifest.sha256`` holds the
SHA-256 of ``manifest.json`` itself, so a damaged manifest is named as such
(indexes from before it load without it), and the manifest's file list must be
complete: every regular file in the directory is listed and checked, none is a
link, and ``tables.sqlite`` is always among them, so an edited manifest cannot
switch the checks off with ``"files": {}``. Loading never runs code: tables
are SQLite, arrays are ``.npy`` without pickle, the store locations a
manifest may name are limited by :mod:`store_trust`, and the encoder backend
its ``encoder`` entry names (``backend`` and ``settings``, written since
encoders record them; absent in older indexes) must be one registered here,
never a module path (:mod:`hybridctx.embeddings.registry`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

from hybridctx.errors import (
    EncoderMismatchError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexStoreError,
    IndexVersionError,
)
from hybridctx.indexers.writer_lock import writer_lock

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "MANIFEST_DIGEST",
    "check_encoder",
    "read_manifest",
    "recover",
    "write_index_dir",
]

logger = logging.getLogger(__name__)

FORMAT_NAME = "hybridctx-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: ``sha256sum``-style digest of ``manifest.json``, written right after it.
MANIFEST_DIGEST = "manifest.sha256"
_OWN_FILES = (MANIFEST, MANIFEST_DIGEST)
#: Encoder identity keys that must match for query vectors to be comparable.
ENCODER_KEYS = ("name", "dim", "pooling")
_CHUNK = 1 << 20


def _show(target: Path) -> str:
    return str(target).rstrip("/\\") + "/"


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hybridctx")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _data_files(root: Path) -> list[Path]:
    """Every file under ``root`` except the manifest and its digest, sorted."""
    own = {root / name for name in _OWN_FILES}
    return sorted(p for p in root.rglob("*") if (p.is_file() or p.is_symlink()) and p not in own)


def _siblings(target: Path, kind: str) -> list[Path]:
    prefix = f".{target.name}.{kind}-"
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.is_dir())


def write_index_dir(
    target: str | os.PathLike[str],
    write_files: Callable[[Path], Mapping[str, Any] | None],
    manifest_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes an index directory atomically, replacing any previous one.

    Args:
        target: the index directory to create or replace.
        write_files: called with a fresh empty directory; writes the data files
            into it (subdirectories allowed, not ``manifest.json``) and may return
            extra manifest entries (counts known only while writing).
        manifest_extra: more manifest entries: encoder identity, index kind, counts.

    Returns:
        The manifest that was written.

    Raises:
        Whatever ``write_files`` raises; the temporary directory is removed and
        the previous index is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(target):
        _recover_locked(target)
        for stale in _siblings(target, "tmp") + _siblings(target, "old"):
            logger.info("removing %s left by an interrupted save", stale)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(6)}"
        tmp.mkdir()
        old: Path | None = None
        try:
            returned = write_files(tmp) or {}
            if any((tmp / name).exists() for name in _OWN_FILES):
                raise IndexStoreError("write_files must not write manifest.json or its digest itself")
            files: dict[str, dict[str, Any]] = {}
            for path in _data_files(tmp):
                _fsync_file(path)
                files[path.relative_to(tmp).as_posix()] = {
                    "sha256": _sha256(path),
                    "bytes": path.stat().st_size,
                }
            for sub in sorted({p.parent for p in _data_files(tmp)} - {tmp}, reverse=True):
                _fsync_dir(sub)
            manifest: dict[str, Any] = {**(manifest_extra or {}), **returned}
            manifest.update(  # the format's own keys always win
                format=FORMAT_NAME,
                format_version=FORMAT_VERSION,
                library_version=_library_version(),
                created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                files=files,
            )
            text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            _write_synced(tmp / MANIFEST, text.encode("utf-8"))
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            _write_synced(tmp / MANIFEST_DIGEST, f"{digest}  {MANIFEST}\n".encode("ascii"))
            _fsync_dir(tmp)
            if target.exists():
                old = target.parent / f".{target.name}.old-{secrets.token_hex(6)}"
                os.rename(target, old)
            os.rename(tmp, target)
            _fsync_dir(target.parent)
        except BaseException:
            if old is not None and not target.exists():
                os.rename(old, target)
                old = None
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    logger.info("saved index to %s (%d files)", _show(target), len(files))
    return manifest


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _complete(candidate: Path) -> float | None:
    """Modification time of a candidate whose manifest verifies, else ``None``."""
    try:
        _verify(candidate, _parse_manifest(candidate))
    except IndexStoreError:
        return None
    return (candidate / MANIFEST).stat().st_mtime


def _recover_locked(target: Path) -> bool:
    if target.exists():
        return False
    # A completed temporary directory is the newer save, interrupted only by
    # its final rename; prefer it over the previous version.
    for kind in ("tmp", "old"):
        found = [(t, p) for p in _siblings(target, kind) if (t := _complete(p)) is not None]
        if found:
            _, best = max(found)
            os.rename(best, target)
            _fsync_dir(target.parent)
            logger.warning("recovered index %s from interrupted save (%s)", _show(target), best.name)
            return True
    return False


def recover(target: str | os.PathLike[str]) -> bool:
    """Repairs an index whose save died between its two renames.

    Args:
        target: the index directory.

    Returns:
        ``True`` when ``target`` was missing and a complete copy (the finished
        new version, else the previous one) was moved back into place.
    """
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return False
    if not (_siblings(target, "tmp") or _siblings(target, "old")):
        return False
    try:
        with writer_lock(target):
            return _recover_locked(target)
    except OSError as exc:
        raise IndexStoreError(
            f"index at '{_show(target)}' was left half-replaced by an interrupted save "
            f"and cannot be repaired here ({exc}); make its directory writable and retry"
        ) from exc


def _parse_manifest(target: Path) -> dict[str, Any]:
    path = target / MANIFEST
    if not path.is_file():
        raise IndexCorruptError(
            f"'{_show(target)}' has no {MANIFEST}: it is not a hybridctx index or its save "
            "never finished; rebuild it with: hybridctx index PATH --index " + _show(target)
        )
    raw = path.read_bytes()
    _check_digest(target, raw)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise IndexCorruptError(f"{MANIFEST} of index '{_show(target)}' is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexCorruptError(
            f"'{_show(target)}' is not a hybridctx index ({MANIFEST} does not name format "
            f"'{FORMAT_NAME}')"
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise IndexCorruptError(f"{MANIFEST} of index '{_show(target)}' has no integer format_version")
    if version > FORMAT_VERSION:
        raise IndexVersionError(
            f"index at '{_show(target)}' was written by format {version}; this hybridctx "
            f"reads up to {FORMAT_VERSION} — upgrade hybridctx"
        )
    if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
        raise IndexCorruptError(f"{MANIFEST} of index '{_show(target)}' lists no files; rebuild the index")
    for key in ("encoder", "index", "store", "counts", "lexical"):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            raise IndexCorruptError(f"{MANIFEST} of index '{_show(target)}' has a '{key}' entry that is not an "
                                    "object; rebuild the index")
    return manifest


def _check_digest(target: Path, raw: bytes) -> None:
    """Checks ``manifest.json`` against ``manifest.sha256`` (absent in indexes written before it)."""
    path = target / MANIFEST_DIGEST
    if not path.exists():
        logger.info("index %s has no %s (written before it existed)", _show(target), MANIFEST_DIGEST)
        return
    try:
        recorded = path.read_text(encoding="ascii").split()[0]
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        raise IndexCorruptError(f"{MANIFEST_DIGEST} of index '{_show(target)}' is unreadable; rebuild the index") from exc
    if hashlib.sha256(raw).hexdigest() != recorded:
        raise IndexCorruptError(
            f"{MANIFEST} of index '{_show(target)}' fails its SHA-256 checksum ({MANIFEST_DIGEST}): "
            "it was changed or damaged; rebuild the index")


def _check_listing(target: Path, manifest: Mapping[str, Any], required: tuple[str, ...] = ()) -> None:
    """The manifest lists every file there is, links are refused, ``required`` files are listed."""
    listed = manifest["files"]
    for name, info in listed.items():
        parts = Path(name).parts
        if not isinstance(info, dict) or Path(name).is_absolute() or ".." in parts or not parts:
            raise IndexCorruptError(f"{MANIFEST} of index '{_show(target)}' lists a bad file entry {name!r}")
    for name in required:
        if name not in listed:
            raise IndexCorruptError(f"{MANIFEST} of index '{_show(target)}' does not list its '{name}'; "
                                    "rebuild the index")
    for path in _data_files(target):
        name = path.relative_to(target).as_posix()
        if path.is_symlink():
            raise IndexCorruptError(f"index '{_show(target)}' holds a link '{name}'; index files must be "
                                    "regular files — rebuild the index")
        if name not in listed:
            raise IndexCorruptError(f"index '{_show(target)}' holds a file '{name}' that its {MANIFEST} "
                                    "does not list; rebuild the index")


def _verify(target: Path, manifest: Mapping[str, Any], required: tuple[str, ...] = ()) -> None:
    _check_listing(target, manifest, required)
    entries = sorted(manifest["files"].items())
    for name, info in entries:  # cheap checks first: a missing file is named before any hashing
        path = target / name
        if path.is_symlink() or not path.is_file():
            raise IndexCorruptError(f"index '{_show(target)}' is missing its file '{name}'; rebuild it")
        size = path.stat().st_size
        if size != info.get("bytes"):
            raise IndexCorruptError(
                f"file '{name}' of index '{_show(target)}' has {size} bytes, the manifest "
                f"says {info.get('bytes')}; rebuild the index"
            )
    for name, info in entries:
        if _sha256(target / name) != info.get("sha256"):
            raise IndexCorruptError(
                f"file '{name}' of index '{_show(target)}' fails its SHA-256 checksum; "
                "rebuild the index"
            )


def read_manifest(target: str | os.PathLike[str], verify: bool = True,
                  required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Reads and checks the manifest of an index directory.

    Repairs a save interrupted between its renames first (:func:`recover`).

    Args:
        target: the index directory.
        verify: also check every listed file's size and SHA-256 (reads every byte);
            that the listing is complete is checked either way.
        required: files the manifest must list (the caller's index kind needs them).

    Returns:
        The manifest as a dict.

    Raises:
        IndexNotFoundError: ``target`` does not exist.
        IndexCorruptError: no/unparsable manifest, wrong format name, or a
            listed file missing or changed (the message names it).
        IndexVersionError: written by a newer format version.
    """
    target = Path(target)
    recover(target)
    if not target.exists():
        raise IndexNotFoundError(
            f"no index at '{_show(target)}'; create one with: hybridctx index PATH --index {_show(target)}"
        )
    if not target.is_dir():
        raise IndexCorruptError(f"'{target}' is a file, not an index directory")
    manifest = _parse_manifest(target)
    if verify:
        _verify(target, manifest, required)
    else:  # no hashing, but the listing costs nothing and closes the "files": {} hole
        _check_listing(target, manifest, required)
    return manifest


def _describe(identity: Mapping[str, Any]) -> str:
    extras = ", ".join(f"{k} {identity.get(k)}" for k in ENCODER_KEYS[1:] if k in identity)
    return f"'{identity.get('name')}'" + (f" ({extras})" if extras else "")


def check_encoder(
    manifest: Mapping[str, Any],
    identity: Mapping[str, Any],
    keys: tuple[str, ...] = ENCODER_KEYS,
) -> None:
    """Refuses a query encoder whose vectors are not comparable with the index's.

    Args:
        manifest: as returned by :func:`read_manifest`; its ``encoder`` entry is
            the identity the index was built with.
        identity: the query encoder's identity (``name``, ``dim``, ``pooling``, ...).
        keys: identity keys that must be equal; other differences are logged.

    Raises:
        EncoderMismatchError: naming both encoders.
    """
    built = manifest.get("encoder") or {}
    differing = [k for k in keys if built.get(k) != identity.get(k)]
    if differing:
        raise EncoderMismatchError(
            f"the index was built with encoder {_describe(built)} but the query encoder is "
            f"{_describe(identity)} (differs in {', '.join(differing)}); query with the "
            f"index's encoder (--encoder {built.get('name')}) or rebuild the index"
        )
    others = sorted(
        k for k in set(built) | set(identity) if k not in keys and built.get(k) != identity.get(k)
    )
    if others:
        logger.info(
            "query encoder settings differ from the index's in %s (not fatal): %s",
            ", ".join(others),
            {k: (built.get(k), identity.get(k)) for k in others},
        )
