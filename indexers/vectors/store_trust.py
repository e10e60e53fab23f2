"""Which store locations a manifest may name: the trust model for indexes from others.

Why: an index directory may come from someone else, and its ``manifest.json``
names where the vectors live. Opening some locations runs code: Qdrant's local
mode loads its points with ``pickle.loads``, and a PostgreSQL data directory
(pgvector's local mode) starts a server under that directory's own
configuration (``archive_command`` and friends are shell commands). So a local
directory is opened only when

* the user names it (``store_url=``, ``--store-url``, ``$HYBRIDCTX_STORE_URL``), or
* the manifest carries a ``trust`` tag that only this user's hybridctx can make:
  an HMAC-SHA256, under a per-user secret key, of the store kind, location and
  table/collection name, written when hybridctx itself created or saved that store.

A server URL (``http(s)://``, ``postgresql://``) and Qdrant's ``:memory:`` run no
code here and are taken from the manifest as they are. The key lives in
``$HYBRIDCTX_CONFIG`` (default ``~/.config/hybridctx``) as ``store-trust.key``,
created with mode 0600 the first time a local store is saved.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

__all__ = ["CONFIG_ENV", "is_local_location", "location_tag", "tag_matches"]

CONFIG_ENV = "HYBRIDCTX_CONFIG"
_KEY_FILE = "store-trust.key"
_SERVER_SCHEMES = ("http://", "https://", "postgresql://", "postgres://")


def is_local_location(url: str | None) -> bool:
    """True for a location that opening reads as files on this machine (a directory)."""
    if not url or url == ":memory:":
        return False
    return not url.lower().startswith(_SERVER_SCHEMES)


def _config_dir() -> Path:
    configured = os.environ.get(CONFIG_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "hybridctx"


def _key(create: bool) -> bytes | None:
    path = _config_dir() / _KEY_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        if not create:
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{_KEY_FILE}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def _message(kind: str, url: str, name: str | None) -> bytes:
    return json.dumps(["hybridctx-store-v1", kind, url, name], ensure_ascii=False).encode("utf-8")


def location_tag(kind: str, url: str, name: str | None) -> str:
    """The ``trust`` tag this user's hybridctx writes beside a local store location."""
    key = _key(create=True) or b""  # create=True always returns the key
    return hmac.new(key, _message(kind, url, name), hashlib.sha256).hexdigest()


def tag_matches(entry: Mapping[str, Any]) -> bool:
    """Whether a manifest ``store`` entry carries a valid tag of this user's key."""
    tag, url = entry.get("trust"), entry.get("url")
    if not isinstance(tag, str) or not isinstance(url, str):
        return False
    key = _key(create=False)
    if key is None:
        return False
    name = entry.get("name")
    expected = hmac.new(key, _message(str(entry.get("kind")), url, name if isinstance(name, str) else None),
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, tag)
