"""Landmark vectors in Qdrant: one collection, dot product on unit vectors, payload filters.

Why: Qdrant serves filtered vector search from a server or a cluster (shards,
replicas), and its client also runs in-process (local mode) on a directory or
in memory, so the same code path is tested without a server. Each point is a
landmark row: id = row, vector = its unit vector, payload ``{"doc_id": str,
"row": int}``. Searches filter on ``doc_id`` (a document restriction) and
``row`` (rows the searching index knows); on a server both fields get payload
indexes.

Qdrant has no multi-request transactions: a document is upserted in batches,
and if one fails the batches already written are deleted again before the
error is raised. Local mode stores points with Python's pickle in
``<path>/collection/*/storage.sqlite`` (qdrant-client's format, not ours): open
only local stores you made; share an index through a server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Any, Iterator, Sequence

import numpy as np

from hybridctx.errors import ConfigError, IndexStoreError, MissingDependencyError
from hybridctx.indexers.vectors.store_registry import redact_url

__all__ = ["QDRANT_API_KEY_ENV", "QdrantStore"]

logger = logging.getLogger(__name__)

QDRANT_API_KEY_ENV = "QDRANT_API_KEY"
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_BATCH = 512


def _qdrant() -> tuple[Any, Any]:
    try:
        import qdrant_client
        from qdrant_client import models
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "qdrant-client", "qdrant", "the Qdrant vector store") from exc
    return qdrant_client, models


def _client_errors() -> tuple[type[BaseException], ...]:
    from qdrant_client.common.client_exceptions import QdrantException
    from qdrant_client.http.exceptions import ApiException

    # Local mode raises ValueError/RuntimeError (unknown collection, folder in use).
    return (ApiException, QdrantException, ValueError, RuntimeError, OSError)


class QdrantStore:
    """A :class:`~hybridctx.indexers.vectors.store_protocol.VectorEngine` in one Qdrant collection.

    Build with :meth:`connect`.
    """

    kind = "qdrant"

    def __init__(self, client: Any, collection: str, dim: int, *, location: str, ef_search: int,
                 server: bool) -> None:
        self._client, self._name, self._dim = client, collection, int(dim)
        self._location, self._ef_search, self._server = location, ef_search, server
        # Local mode locks its folder (or lives in memory): no other process can write
        # while this one reads, so searches need no guard against others' unsaved rows.
        self.exclusive = not server

    @classmethod
    def connect(cls, spec: Any, dim: int, *, create: bool) -> QdrantStore:
        """Opens ``spec.url`` (server URL, directory or ``:memory:``) and the collection ``spec.name``.

        Raises:
            MissingDependencyError: qdrant-client is missing.
            ConfigError: a bad collection name, or ``create`` and the collection holds points.
            IndexStoreError: the server or folder cannot be used, or the collection is missing.
        """
        qdrant_client, models = _qdrant()
        name, opts, url = str(spec.name), dict(spec.options or {}), str(spec.url)
        if not _NAME.match(name):
            raise ConfigError(f"collection name {name!r} must be letters, digits, '_' or '-' (at most 128)")
        server = url.startswith(("http://", "https://"))
        shown = redact_url(url) or url
        if not server and url != ":memory:" and not create and not os.path.isdir(url):
            raise IndexStoreError(f"Qdrant folder '{url}' with this index's vectors does not exist; it was moved "
                                  "or deleted: give its location with store_url or rebuild the index")
        try:
            if server:
                client = qdrant_client.QdrantClient(url=url, api_key=os.environ.get(QDRANT_API_KEY_ENV))
            elif url == ":memory:":
                client = qdrant_client.QdrantClient(location=":memory:")
            else:
                client = qdrant_client.QdrantClient(path=url)
            exists = client.collection_exists(name)
            if create:
                if exists and client.count(name, exact=True).count:
                    raise ConfigError(f"collection {name!r} at '{shown}' already holds points of another index; "
                                      "choose another name or delete that collection")
                if not exists:
                    client.create_collection(
                        name, vectors_config=models.VectorParams(size=int(dim), distance=models.Distance.DOT),
                        hnsw_config=models.HnswConfigDiff(m=int(opts.get("m", 16)),
                                                          ef_construct=int(opts.get("ef_construction", 100))))
                    if server:  # payload indexes only exist on a server (local mode warns)
                        client.create_payload_index(name, "doc_id", models.PayloadSchemaType.KEYWORD)
                        client.create_payload_index(name, "row", models.PayloadSchemaType.INTEGER)
            elif not exists:
                raise IndexStoreError(f"Qdrant at '{shown}' has no collection {name!r} with this index's vectors; "
                                      "it was deleted or the URL points elsewhere: rebuild the index")
            else:
                size = client.get_collection(name).config.params.vectors.size
                if int(size) != int(dim):
                    raise IndexStoreError(f"collection {name!r} at '{shown}' holds vectors of dimension {size}, not {dim}")
        except _client_errors() as exc:
            if isinstance(exc, IndexStoreError):
                raise
            raise IndexStoreError(f"cannot use Qdrant at '{shown}': {exc}".strip()) from exc
        logger.info("qdrant: collection %s at %s", name, shown)
        return cls(client, name, dim, location=shown, ef_search=int(opts.get("ef_search", 128)),
                   server=server)

    @property
    def dim(self) -> int:
        return self._dim

    def __repr__(self) -> str:
        return f"QdrantStore(collection={self._name!r}, at={self._location!r})"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except _client_errors() as exc:
            raise IndexStoreError(f"Qdrant failed to {what} in collection {self._name!r} at "
                                  f"'{self._location}': {exc}".strip()) from exc

    # -- VectorEngine ---------------------------------------------------
    def count(self) -> int:
        with self._errors("count points"):
            return int(self._client.count(self._name, exact=True).count)

    def add(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str) -> None:
        """Upserts in batches; on an error, deletes what was written and raises."""
        written = 0
        try:
            with self._errors(f"add the vectors of document {doc_id!r}"):
                for start in range(0, len(ids), _BATCH):
                    self._write_batch(ids[start:start + _BATCH], vectors[start:start + _BATCH], doc_id)
                    written = start + _BATCH
        except BaseException:
            if written:
                with self._errors("undo a failed add"):
                    self.delete(ids[:written])
            raise

    def _write_batch(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str) -> None:
        _, models = _qdrant()
        rows = ids.tolist()
        self._client.upsert(self._name, wait=True, points=models.Batch(
            ids=rows, vectors=np.asarray(vectors, np.float32).tolist(),
            payloads=[{"doc_id": doc_id, "row": r} for r in rows]))

    def delete(self, ids: np.ndarray) -> None:
        _, models = _qdrant()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._errors("delete points"):
            for start in range(0, len(ids), 8 * _BATCH):
                self._client.delete(self._name, wait=True, points_selector=models.PointIdsList(
                    points=ids[start:start + 8 * _BATCH].tolist()))

    def delete_from(self, first_id: int) -> None:
        _, models = _qdrant()
        selector = models.FilterSelector(filter=models.Filter(must=[
            models.FieldCondition(key="row", range=models.Range(gte=int(first_id)))]))
        with self._errors("delete unsaved points"):
            self._client.delete(self._name, wait=True, points_selector=selector)

    def search(self, queries: np.ndarray, k: int, *, doc_ids: Sequence[str] | None = None,
               below: int | None = None, exclude: np.ndarray | None = None,
               exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        _, models = _qdrant()
        must: list[Any] = []
        if doc_ids is not None:
            must.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids))))
        if below is not None:
            must.append(models.FieldCondition(key="row", range=models.Range(lt=int(below))))
        must_not = [models.HasIdCondition(has_id=np.asarray(exclude).tolist())] if exclude is not None and len(exclude) else []
        flt = models.Filter(must=must or None, must_not=must_not or None) if must or must_not else None
        # Local mode is always exact and warns about search parameters.
        params = models.SearchParams(exact=exact, hnsw_ef=max(self._ef_search, k)) if self._server else None
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        with self._errors("search"):
            for i, q in enumerate(queries):
                points = self._client.query_points(self._name, query=np.asarray(q, np.float32).tolist(),
                                                   query_filter=flt, search_params=params, limit=int(k),
                                                   with_payload=False).points
                for j, p in enumerate(points):
                    ids[i, j], scores[i, j] = int(p.id), float(p.score)
        return scores, ids

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._errors("read vectors"):
            points = self._client.retrieve(self._name, np.unique(ids).tolist(), with_vectors=True)
        found = {int(p.id): np.asarray(p.vector, np.float32) for p in points}
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise KeyError(f"vector ids not in collection {self._name!r}: {missing[:5]}")
        return np.stack([found[int(i)] for i in ids]) if len(ids) else np.empty((0, self._dim), np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "collection": self._name, "distance": "dot", "ef_search": self._ef_search}

    def close(self) -> None:
        with self._errors("close"):
            self._client.close()

    def drop(self) -> None:
        with self._errors("delete the collection"):
            self._client.delete_collection(self._name)
