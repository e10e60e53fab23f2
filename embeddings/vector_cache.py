"""Vectors already paid for, kept on disk by content hash.

Why: an embeddings API charges per token, and re-indexing a corpus (a changed
setting, a rebuilt index, a second index over the same files) would pay again
for every window it has embedded before. Each vector is stored under the
SHA-256 of the encoder's namespace (URL, model, prefix) and the exact text, in
one SQLite file under ``$HYBRIDCTX_CACHE/embeddings/`` (else the user cache),
so any index, process or run finds it. No pickle: vectors are raw float32 bytes.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from hybridctx.errors import ConfigError

__all__ = ["VectorCache", "default_cache_path"]

logger = logging.getLogger(__name__)

_CHUNK = 500  # keys per SELECT (SQLite's variable limit is 999 on old builds)


def default_cache_path() -> Path:
    """``$HYBRIDCTX_CACHE/embeddings/vectors.sqlite`` (else ``~/.cache/hybridctx/...``)."""
    from hybridctx.embeddings.onnx_export import cache_root

    return cache_root() / "embeddings" / "vectors.sqlite"


class VectorCache:
    """Vectors by text, for one encoder namespace.

    Args:
        namespace: what makes vectors comparable (e.g. ``"api|URL|model|prefix"``);
            the same text under another namespace is another entry.
        path: the SQLite file (default :func:`default_cache_path`).
    """

    def __init__(self, namespace: str, path: str | Path | None = None) -> None:
        self.namespace = namespace
        self.path = Path(path) if path is not None else default_cache_path()
        self._lock = threading.Lock()  # one connection, shared by the threads of a server
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER NOT NULL, "
                             "vector BLOB NOT NULL)")
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the embeddings cache '{self.path}': {exc}; set HYBRIDCTX_CACHE to a "
                              "writable directory") from exc

    def key(self, text: str) -> str:
        """The content hash ``text`` is stored under."""
        return hashlib.sha256(f"{self.namespace}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """``text -> (dim,) float32`` for the texts cached (the others are absent)."""
        keys = {self.key(t): t for t in texts}
        found: dict[str, np.ndarray] = {}
        names = list(keys)
        for i in range(0, len(names), _CHUNK):
            part = names[i : i + _CHUNK]
            with self._lock:
                rows = self._db.execute(
                    f"SELECT key, dim, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part).fetchall()
            for key, dim, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if len(vec) == dim:  # a torn row is ignored and paid for again
                    found[keys[key]] = vec
        return found

    def put_many(self, items: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]]) -> None:
        """Store ``text -> (dim,) float32`` vectors (replacing any under the same text)."""
        pairs = items.items() if isinstance(items, Mapping) else items
        rows = [(self.key(t), int(v.shape[-1]), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                for t, v in pairs]
        if rows:
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors (key, dim, vector) VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        self._db.close()
