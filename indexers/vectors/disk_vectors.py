"""The exact float32 copy of every landmark vector, kept in a file instead of RAM.

Why: :class:`VectorBuffer` holds ``4 * dim`` bytes per landmark in memory
(1.5 KB for 384-d), which is what stops a corpus from outgrowing RAM long
before the compressed IVF-PQ codes do (40 bytes each for ``PQ32``). This buffer
has the same interface but appends vectors to a raw float32 file and reads back
only the rows asked for (``os.pread``, runs of adjacent rows in one call), so
memory holds the ids and live flags (9 bytes per vector) and the rows of the
moment; the file's pages stay in the OS page cache, which the kernel can drop.
A saved ``vectors.npy`` is read in place and copied into the work file only on
the first append.

Why reads rather than a memory map: a mapped page counts in the process's RSS
once touched, and the kernel maps a whole large folio (up to 2 MB) of an
already-cached file per fault, so re-ranking a few dozen rows per query soon
maps nearly all of the file; ``pread`` of the same rows leaves RSS flat
(measured: docs/benchmarks.md#vector-backend-internals).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

from .vector_buffer import IdKeyedRows

__all__ = ["DiskVectorBuffer"]

logger = logging.getLogger(__name__)

WORK_FILE = "vectors.f32"
_CHUNK_ROWS = 16_384  # rows per streamed read or write (25 MB at 384-d)


class DiskVectorBuffer(IdKeyedRows):
    """``(n, dim) float32`` vectors keyed by int64 ids, stored in ``workdir``.

    Args:
        dim: vector dimension.
        workdir: a directory for the work file (created on the first append).
        ids: ``(n,) int64`` ids of ``vectors`` (a saved index).
        vectors: ``(n, dim) float32``, e.g. a read-only memmap of ``vectors.npy``.

    Removed rows stay in the work file until :meth:`compact` (saving writes only live rows).
    """

    def __init__(
        self, dim: int, workdir: Path, ids: np.ndarray | None = None, vectors: np.ndarray | None = None
    ) -> None:
        self.dim = int(dim)
        self._workdir = Path(workdir)
        ids = np.empty(0, np.int64) if ids is None else np.asarray(ids, dtype=np.int64).reshape(-1)
        self._ids = ids.copy()
        self._alive = np.ones(len(ids), dtype=bool)
        self._n = len(ids)
        self._dead = 0
        self._source = vectors if vectors is not None else np.empty((0, self.dim), np.float32)
        self._in_work = False  # rows live in the work file (else in ``_source``)
        self._view: np.ndarray | None = None
        self._order: np.ndarray | None = None  # argsort of ids when appends were not ascending
        self._sorted = bool(np.all(np.diff(ids) > 0)) if len(ids) > 1 else True

    # -- lookup ---------------------------------------------------------
    def _rows(self) -> np.ndarray:
        """All stored rows (live or dead), ``(n, dim) float32``, memory-mapped."""
        if not self._in_work:
            return self._source
        if self._view is None or len(self._view) != self._n:
            if self._n == 0:
                return np.empty((0, self.dim), np.float32)
            self._view = np.memmap(self._workdir / WORK_FILE, dtype=np.float32, mode="r", shape=(self._n, self.dim))
        return self._view

    def _location(self) -> tuple[Path, int] | None:
        """The file holding the rows and the byte offset of row 0 (``None``: rows are in RAM)."""
        if self._in_work:
            return self._workdir / WORK_FILE, 0
        source = self._source
        if isinstance(source, np.memmap) and source.filename:
            return Path(source.filename), int(source.offset)
        return None

    def _read_rows(self, pos: np.ndarray) -> np.ndarray:
        """Rows at positions ``pos`` ``(m,)``, in that order: ``(m, dim) float32`` in RAM."""
        pos = np.asarray(pos, dtype=np.int64).reshape(-1)
        where = self._location()
        if where is None or len(pos) == 0:
            return np.ascontiguousarray(np.take(self._source, pos, axis=0), dtype=np.float32)
        path, offset = where
        row = self.dim * 4
        out = np.empty((len(pos), self.dim), np.float32)
        order = np.argsort(pos, kind="stable")
        ordered = pos[order]
        cuts = [0, *(np.flatnonzero(np.diff(ordered) != 1) + 1).tolist(), len(ordered)]
        with open(path, "rb") as fh:
            fd = fh.fileno()
            for a, b in zip(cuts, cuts[1:]):
                data = os.pread(fd, (b - a) * row, offset + int(ordered[a]) * row)
                out[order[a:b]] = np.frombuffer(data, np.float32).reshape(b - a, self.dim)
        return out

    def _read_range(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo .. hi`` (positions), ``(hi - lo, dim) float32`` in RAM."""
        return self._read_rows(np.arange(lo, hi, dtype=np.int64))

    def _id_order(self) -> np.ndarray | None:
        if self._sorted:
            return None
        if self._order is None:
            self._order = np.argsort(self._ids[: self._n], kind="stable")
        return self._order

    def _gather(self, pos: np.ndarray) -> np.ndarray:
        return self._read_rows(pos)

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` ``(n,) int64`` ascending and ``vectors`` ``(n, dim) float32`` (memory-mapped)."""
        if self._dead or not self._sorted:
            self.compact()
        return self._ids[: self._n], self._rows()

    def chunks(self, rows: int = _CHUNK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Live ``(ids, vectors)`` in stored order, ``rows`` at a time, each chunk in RAM."""
        for lo in range(0, self._n, rows):
            keep = np.flatnonzero(self._alive[lo : lo + rows]) + lo
            if len(keep):
                yield self._ids[keep], self._read_rows(keep)

    def sample(self, n: int) -> np.ndarray:
        """``(min(n, len), dim) float32`` live vectors spread evenly over the store (for training)."""
        live = np.flatnonzero(self._alive[: self._n])
        if len(live) > n:
            live = live[np.linspace(0, len(live) - 1, n).astype(np.int64)]
        return self._read_rows(live)

    # -- mutation -------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Appends new ``ids`` ``(m,) int64`` with ``vectors`` ``(m, dim) float32``.

        Raises:
            ValueError: an id repeats or is already present (callers check first).
        """
        ids = self._new_ids(ids)
        m = len(ids)
        if m == 0:
            return
        self._to_work()
        with open(self._workdir / WORK_FILE, "ab") as fh:
            fh.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        ascending = bool(np.all(np.diff(ids) > 0)) and (self._n == 0 or ids[0] > self._ids[self._n - 1])
        self._reserve(self._n + m)
        self._ids[self._n : self._n + m] = ids
        self._alive[self._n : self._n + m] = True
        self._n += m
        self._sorted = self._sorted and ascending
        self._order, self._view = None, None

    def compact(self) -> None:
        """Rewrites the work file with live rows only, sorted by id (streamed, chunk by chunk)."""
        n = self._n
        keep = np.flatnonzero(self._alive[:n])
        keep = keep[np.argsort(self._ids[keep], kind="stable")]
        self._workdir.mkdir(parents=True, exist_ok=True)
        fresh = self._workdir / (WORK_FILE + ".new")
        with open(fresh, "wb") as fh:
            for lo in range(0, len(keep), _CHUNK_ROWS):
                fh.write(self._read_rows(keep[lo : lo + _CHUNK_ROWS]).tobytes())
        self._view = None
        fresh.replace(self._workdir / WORK_FILE)
        self._ids = self._ids[keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self._n, self._dead, self._in_work = len(keep), 0, True
        self._sorted, self._order = True, None
        self._source = np.empty((0, self.dim), np.float32)

    def write_npy(self, path: Path) -> None:
        """Writes the live vectors, ascending by id, as ``.npy`` at ``path`` (streamed)."""
        if self._dead or not self._sorted:
            self.compact()
        with open(path, "wb") as fh:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                      "shape": (self._n, self.dim)}
            np.lib.format.write_array_header_1_0(fh, header)
            for lo in range(0, self._n, _CHUNK_ROWS):
                fh.write(self._read_range(lo, min(lo + _CHUNK_ROWS, self._n)).tobytes())

    def _to_work(self) -> None:
        """Moves the rows from the read-only source into the appendable work file (once)."""
        if self._in_work:
            return
        self._workdir.mkdir(parents=True, exist_ok=True)
        target = self._workdir / WORK_FILE
        source = self._source
        if isinstance(source, np.memmap) and source.offset is not None and Path(str(source.filename)).is_file():
            # A saved vectors.npy: copy its data bytes without going through numpy.
            with open(source.filename, "rb") as src, open(target, "wb") as dst:
                src.seek(source.offset)
                shutil.copyfileobj(src, dst, length=1 << 24)
        else:
            with open(target, "wb") as dst:
                for lo in range(0, len(source), _CHUNK_ROWS):
                    dst.write(np.ascontiguousarray(source[lo : lo + _CHUNK_ROWS], dtype=np.float32).tobytes())
        if len(source):
            logger.info("copied %d saved vectors into the work file %s for writing", len(source), target)
        self._in_work, self._view = True, None
        self._source = np.empty((0, self.dim), np.float32)

    def _reserve(self, need: int) -> None:
        cap = len(self._ids)
        if need <= cap:
            return
        new_cap = max(need, 2 * cap, 1024)
        ids = np.empty(new_cap, dtype=np.int64)
        alive = np.zeros(new_cap, dtype=bool)
        ids[: self._n] = self._ids[: self._n]
        alive[: self._n] = self._alive[: self._n]
        self._ids, self._alive = ids, alive
