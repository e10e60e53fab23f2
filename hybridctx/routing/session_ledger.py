"""When each scope's full context was last sent, per index and model profile.

Why: prompt caching makes the second full-context question on a scope cost a
fraction of the first (:mod:`hybridctx.routing.router`), but only while the prefix is
still cached. The router cannot know that from one question; this ledger
remembers, per model profile, the last time the full context of each scope
(the set of document ids sent, plus an optional salt for whatever else sits in
the prefix, e.g. a chat client's system prompt) was sent, so ``route``, ``ask``
and the gateway price a scope sent within the TTL warm.

The ledger is one small JSON file beside the index, ``.<index>.sessions.json``
(not inside it: an index directory holds only the files its manifest lists, and
a save replaces the directory whole). Updates are read-modify-write under the
sibling lock ``.<index>.sessions.lock`` (:func:`writer_lock`) and land with
tempfile + fsync + ``os.replace``, so a reader sees the old file or the new one,
never half of one, even when a writer is killed mid-write. The ledger is advice:
a file that cannot be read or written is logged and treated as empty, never an
error that stops a question.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["SessionLedger", "ledger_path", "scope_key"]

logger = logging.getLogger(__name__)

_VERSION = 1
#: Entries unused for this long are dropped on the next write (no TTL is longer than a day).
_KEEP_S = 86_400.0
_LOCK_WAIT_S = 5.0


def ledger_path(index_dir: str | os.PathLike[str]) -> Path:
    """The ledger file of index directory ``index_dir`` (a hidden sibling)."""
    target = Path(index_dir).expanduser().absolute()
    return target.parent / f".{target.name}.sessions.json"


def scope_key(doc_ids: Sequence[str], salt: str = "") -> str:
    """A stable key for the set of documents sent (order and repeats do not matter)."""
    digest = hashlib.sha256()
    for doc_id in sorted(set(doc_ids)):
        digest.update(doc_id.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(b"\1" + salt.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


class SessionLedger:
    """Last full-context send per scope, for one index and one model profile.

    Args:
        index_dir: the index directory (the ledger lives beside it).
        profile: the model profile's name (each provider caches its own prefixes).
        clock: seconds since the epoch (``time.time``; tests pass their own).
    """

    def __init__(self, index_dir: str | os.PathLike[str], profile: str, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = ledger_path(index_dir)
        self.profile = profile
        self._clock = clock

    def last_sent(self, doc_ids: Sequence[str], *, tokens: int | None = None, salt: str = "") -> float | None:
        """When this scope's full context was last sent (epoch seconds), or ``None``.

        With ``tokens``, a send of a different size (a document re-indexed with
        new text) does not count: its prefix is not the one cached.
        """
        entry = self._read().get(self.profile, {}).get(scope_key(doc_ids, salt))
        if not isinstance(entry, dict) or not isinstance(entry.get("sent_at"), (int, float)):
            return None
        if tokens is not None and entry.get("tokens") != tokens:
            return None
        return float(entry["sent_at"])

    def is_warm(self, doc_ids: Sequence[str], ttl_s: float | None, *, tokens: int | None = None,
                salt: str = "") -> bool:
        """Whether the scope was sent within ``ttl_s`` seconds (``None``: no cache, never warm)."""
        if ttl_s is None:
            return False
        sent = self.last_sent(doc_ids, tokens=tokens, salt=salt)
        return sent is not None and 0 <= self._clock() - sent <= ttl_s

    def record(self, doc_ids: Sequence[str], tokens: int, *, salt: str = "") -> bool:
        """Note that this scope's full context was sent now; ``False`` when the ledger could not be written."""
        from hybridctx.errors import HybridCtxError
        from hybridctx.indexers.writer_lock import writer_lock

        now = self._clock()
        key = scope_key(doc_ids, salt)
        try:
            with writer_lock(self._lock_target, wait_s=_LOCK_WAIT_S, on_wait=logger.debug):
                self._drop_stale_temps()
                data = self._read()
                scopes = data.setdefault(self.profile, {})
                old = scopes.get(key)
                if not isinstance(old, dict):
                    old = {}
                scopes[key] = {"sent_at": now, "tokens": int(tokens), "docs": len(set(doc_ids)),
                               "sends": int(old.get("sends", 0)) + 1}
                for profile in list(data):
                    kept = {k: v for k, v in data[profile].items()
                            if isinstance(v, dict) and now - float(v.get("sent_at", 0)) <= _KEEP_S}
                    if kept:
                        data[profile] = kept
                    else:
                        del data[profile]
                self._write({"version": _VERSION, "profiles": data})
        except (OSError, HybridCtxError) as exc:
            logger.warning("session ledger %s not updated (%s); the next question on this scope is priced cold",
                           self.path, exc)
            return False
        return True

    @property
    def _lock_target(self) -> Path:
        # writer_lock locks ".<name>.lock" beside its target: ".<index>.sessions.lock".
        return self.path.parent / self.path.name[1:].removesuffix(".json")

    def _drop_stale_temps(self) -> None:
        """Temp files of a writer killed before its rename (only the lock holder writes one)."""
        for stale in self.path.parent.glob(self.path.name + ".*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("session ledger %s unreadable (%s); treating every scope as cold", self.path, exc)
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            logger.warning("session ledger %s is not JSON (%s); treating every scope as cold", self.path, exc)
            return {}
        profiles = data.get("profiles") if isinstance(data, dict) else None
        if not isinstance(profiles, dict):
            return {}
        return {k: dict(v) for k, v in profiles.items() if isinstance(v, dict)}

    def _write(self, payload: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # the rename itself survives a power cut
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
