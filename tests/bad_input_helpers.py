"""Helpers shared by the bad-input and fuzz tests: index snapshots, resealing a crafted index, stderr checks."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hybridctx.indexers import persistence


def snapshot(index_dir: Path) -> dict[str, bytes]:
    """Every file of the index (bytes) and the names of its hidden siblings (save leftovers, work dirs)."""
    files = {p.relative_to(index_dir).as_posix(): p.read_bytes() for p in sorted(index_dir.rglob("*")) if p.is_file()}
    siblings = sorted(p.name for p in index_dir.parent.iterdir()
                      if p.name.startswith(f".{index_dir.name}.") and not p.name.endswith(".lock"))
    return {**files, "<siblings>": "\n".join(siblings).encode()}


def reseal(index_dir: Path) -> None:
    """Rewrites the manifest's sizes and checksums (and its own digest) to match the files as they are:
    what someone crafting an index would do, so the loader's checks past the checksums are reached."""
    path = index_dir / persistence.MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
        for name in list(manifest["files"]):
            file = index_dir / name
            if file.is_file():
                data = file.read_bytes()
                manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    write_manifest(index_dir, manifest)


def write_manifest(index_dir: Path, manifest: object) -> None:
    """Writes ``manifest`` as the index's manifest.json, with a matching digest file when the format has one."""
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (index_dir / persistence.MANIFEST).write_text(text, encoding="utf-8")
    digest_name = getattr(persistence, "MANIFEST_DIGEST", None)
    if digest_name:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        (index_dir / digest_name).write_text(f"{digest}  {persistence.MANIFEST}\n", encoding="ascii")


_LOG_RECORD = re.compile(r"^(DEBUG|INFO|WARNING) [\w.]+: ")


def one_line(err: str, *, logs: bool = False) -> str:
    """The single line of an error on stderr (asserts there is exactly one and no traceback).

    With ``logs``, warnings logged before the error (``WARNING name: ...``, e.g. "--kind is
    ignored for an update") are set aside: the error itself must still be one line, the last.
    """
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if logs:
        while len(lines) > 1 and _LOG_RECORD.match(lines[0]):
            lines.pop(0)
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err!r}"
    return lines[0]


@contextmanager
def stderr_logging() -> Iterator[None]:
    """Sends log records to the current ``sys.stderr`` as the CLI does in a real process
    (under pytest the root logger already has pytest's handlers, so ``basicConfig`` adds none)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
