"""IVF indexes whose inverted lists and exact vectors stay on disk: corpora beyond RAM.

Why: an in-memory index holds the exact float32 copy used for re-ranking
(1.5 KB per 384-d landmark) beside the FAISS index (another 1.5 KB for Flat,
40 bytes of IVF-PQ32 code and id), so RAM bounds the corpus. A kind ending in
``",OnDisk"`` (``"IVF1024,PQ32,OnDisk"``) keeps both on disk instead:

* the IVF lists live in a FAISS ``OnDiskInvertedLists`` file (the technique of
  faiss ``contrib/ondisk.py``), written while vectors are added and mapped
  read-only from ``vectors.ivfdata`` when a saved index is opened;
* the exact vectors live in a :class:`DiskVectorBuffer` (a raw float32 file,
  saved as ``vectors.npy``; rows are read on demand, never all at once);
* training uses an evenly spread sample (``train_size``, default ``40 * nlist``,
  at least 10k) rather than every vector, and vectors are added in chunks.

So memory holds the coarse quantizer, the PQ codebooks, 9 bytes per vector of
ids and flags, the training sample while training, and the pages of the lists
FAISS has touched (file-backed: the kernel can drop them). Work files go to a
private directory removed with the index: beside the index directory while one
is being built or updated (the index's own disk), else in ``TMPDIR`` (put it on
a disk, not a RAM-backed tmpfs); a killed run's are removed by the next one
(see :mod:`workdirs`).

Searches run on the CPU: a FAISS GPU index would copy the lists into GPU memory,
the opposite of the point. Deletion works as for in-memory IVF (the codes are
removed from the lists); a loaded index is copied into work files on its first
change. The saved directory is self-contained (FAISS is told to look for the
``.ivfdata`` file beside ``vectors.faiss``), so the atomic save-and-rename of
:mod:`persistence` and its checksums apply unchanged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from hybridctx.errors import ConfigError, IndexCorruptError
from hybridctx.indexers.vectors.disk_vectors import DiskVectorBuffer
from hybridctx.indexers.workdirs import WorkDir, work_dir
from hybridctx.indexers.vectors.faiss_index import (
    IDS_FILE,
    INDEX_FILE,
    META_FILE,
    VECTORS_FILE,
    FaissVectorIndex,
    import_faiss,
    is_on_disk_kind,
)

__all__ = ["IVFDATA_FILE", "ON_DISK", "OnDiskIVFIndex", "base_kind", "is_on_disk_kind", "on_disk_kind", "saved_on_disk"]

logger = logging.getLogger(__name__)

ON_DISK = "OnDisk"
IVFDATA_FILE = "vectors.ivfdata"
_WORK_LISTS = "lists.ivfdata"
_ADD_ROWS = 16_384  # vectors per FAISS add while filling (25 MB at 384-d)
# FAISS starts 32 threads per search to page the probed lists in ahead of the scan, most of
# a query's time when the pages are cached (measured: docs/benchmarks.md#vector-backend-internals);
# the scan faults them in anyway.
_PREFETCH_THREADS = 0


def base_kind(kind: str) -> str:
    """The FAISS factory string of ``kind`` without ``,OnDisk``."""
    parts = kind.replace(" ", "").split(",")
    return ",".join(parts[:-1] if is_on_disk_kind(kind) else parts)


def on_disk_kind(kind: str | None) -> str:
    """``kind`` with ``,OnDisk`` appended (``IVF1024,PQ32`` when ``kind`` is ``None``)."""
    kind = kind or "IVF1024,PQ32"
    return kind if is_on_disk_kind(kind) else f"{kind.strip()},{ON_DISK}"


@contextlib.contextmanager
def _faiss_stdout_to_stderr() -> Iterator[None]:
    """Sends C-level stdout to stderr while FAISS may resize an on-disk list file.

    Why: ``OnDiskInvertedLists`` ``printf``s "resizing <file> to N bytes" on
    stdout each time its file grows, which would corrupt ``--json`` output.
    The redirection covers the whole process for the duration of the call.
    """
    if os.name != "posix":
        yield
        return
    import ctypes

    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    libc.fflush(None)
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


class OnDiskIVFIndex(FaissVectorIndex):
    """A :class:`FaissVectorIndex` for ``"IVF...,OnDisk"`` kinds (see the module docstring).

    :func:`~hybridctx.indexers.vectors.factory.create_backend` builds it for those kinds
    (``FaissVectorIndex`` refuses them), and opens the directories it saved.

    Args:
        dim: vector dimension.
        kind: an IVF factory string ending in ``,OnDisk``.
        nprobe, rerank: as for :class:`FaissVectorIndex`.
        ef_search: ignored (no HNSW here).
        use_gpu: ``True`` is refused; searches run on the CPU.
        train_size: vectors sampled for training (default ``max(40 * nlist, 10_000)``).

    Raises:
        ConfigError: not an IVF kind, or ``use_gpu=True``.
    """

    on_disk = True

    def __init__(
        self,
        dim: int,
        kind: str = "IVF1024,PQ32,OnDisk",
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rerank: int = 4,
        use_gpu: bool | None = None,
        train_size: int | None = None,
    ) -> None:
        if use_gpu:
            raise ConfigError("an on-disk IVF index searches on the CPU; drop use_gpu=True or ',OnDisk'")
        super().__init__(dim, on_disk_kind(kind), nprobe=nprobe, ef_search=ef_search, rerank=rerank, use_gpu=False)
        self._train_size = train_size
        self._workdir: Path | None = None
        self._work_handle: WorkDir | None = None
        self._buffer = DiskVectorBuffer(dim, self._work())  # type: ignore[assignment]
        _log_cpu_search(self._kind)

    # -- construction ---------------------------------------------------
    def _empty_index(self, faiss: Any) -> Any:
        base = base_kind(self._kind)
        try:
            index = faiss.index_factory(self._dim, base, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ConfigError(
                f"FAISS cannot build index kind {base!r} for dimension {self._dim}: "
                f"{str(exc).strip().splitlines()[-1]}; try 'IVF1024,PQ32,OnDisk'"
            ) from exc
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is None or "PQR" in base.upper():
            raise ConfigError(
                f"on-disk storage needs an IVF kind such as 'IVF1024,PQ32,OnDisk'; {base!r} is not one"
            )
        return index

    def _work(self) -> Path:
        """This index's private work directory (created once, removed with the index)."""
        if self._workdir is None:
            work = work_dir("ondisk")
            work.bind(self)
            self._workdir, self._work_handle = work.path, work
        return self._workdir

    def _ivf(self) -> Any:
        return import_faiss().extract_index_ivf(self._index)

    def _lists_on_disk(self) -> bool:
        faiss = import_faiss()
        return isinstance(faiss.downcast_InvertedLists(self._ivf().invlists), faiss.OnDiskInvertedLists)

    def _writable_lists(self) -> None:
        """Points the index at on-disk lists in the work directory that it may change.

        A fresh index gets empty lists there; a loaded one (mapped read-only from
        the saved directory) gets a copy of its lists, streamed list by list.
        """
        faiss = import_faiss()
        if not self._index.is_trained:
            return
        ivf = self._ivf()
        current = faiss.downcast_InvertedLists(ivf.invlists)
        if isinstance(current, faiss.OnDiskInvertedLists) and not current.read_only:
            return
        path = self._work() / _WORK_LISTS
        fresh = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(path))
        if ivf.ntotal:
            # List by list, not merge_from_multiple: lists laid out by a merge get
            # overwritten when one of them grows later (FAISS 1.15 leaves their
            # space on the free-slot list).
            with _faiss_stdout_to_stderr():
                for list_no in range(ivf.nlist):
                    size = current.list_size(list_no)
                    if size:
                        fresh.add_entries(list_no, size, current.get_ids(list_no), current.get_codes(list_no))
            logger.info("copied %d IVF codes into %s for writing", ivf.ntotal, path)
        fresh.prefetch_nthread = _PREFETCH_THREADS
        ivf.replace_invlists(fresh, True)  # frees the previous lists when the index owned them
        fresh.this.disown()

    # -- overrides: training, adding, removing --------------------------
    def _fill(self) -> None:
        """Trains on a sample, then adds every stored vector chunk by chunk."""
        if len(self._buffer) == 0:
            return
        if not self._index.is_trained:
            ivf = self._ivf()
            n = self._train_size or max(40 * int(ivf.nlist), 10_000)
            self._train(self._buffer.sample(n))  # type: ignore[attr-defined]
        self._writable_lists()
        with _faiss_stdout_to_stderr():
            for ids, x in self._buffer.chunks(_ADD_ROWS):  # type: ignore[attr-defined]
                self._index.add_with_ids(x, ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray, doc_id: str = "") -> None:
        self._writable_lists()
        with _faiss_stdout_to_stderr():
            super().add(ids, vectors, doc_id)

    def remove(self, ids: np.ndarray) -> int:
        self._writable_lists()
        return super().remove(ids)

    # -- persistence ----------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Writes ``vectors.faiss`` + ``vectors.ivfdata`` (compact copy of the lists),
        ``vectors.npy``, ``vector_ids.npy`` and ``vectors.json`` into ``path``, streaming.

        Raises:
            ConfigError: too few vectors to train the kind.
        """
        faiss = import_faiss()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._ensure_ready()
        written = [INDEX_FILE]
        if self._index.is_trained and self._lists_on_disk():
            ivf = self._ivf()
            current = ivf.invlists
            if ivf.ntotal:
                compact = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(path / IVFDATA_FILE))
                sources = faiss.InvertedListsPtrVector()
                sources.push_back(current)
                with _faiss_stdout_to_stderr():
                    compact.merge_from_multiple(sources.data(), 1, False, False)
                written.append(IVFDATA_FILE)
            else:  # FAISS cannot map an empty file: save empty in-memory lists
                compact = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
            own = ivf.own_invlists
            ivf.own_invlists = False  # swap the compact lists in just for writing
            ivf.replace_invlists(compact, False)
            try:
                faiss.write_index(self._index, str(path / INDEX_FILE))
            finally:
                ivf.replace_invlists(current, own)
            del compact
        else:  # untrained (no vectors yet): a plain FAISS file
            faiss.write_index(self._index, str(path / INDEX_FILE))
        self._buffer.write_npy(path / VECTORS_FILE)  # type: ignore[attr-defined]
        self._write_ids_and_meta(path, self._buffer.live()[0], on_disk=True, train_size=self._train_size)
        return written + [VECTORS_FILE, IDS_FILE, META_FILE]

    def close(self) -> None:
        """Removes the work files (copies of the lists and vectors being changed). Idempotent.

        The FAISS index is dropped first, so nothing maps a removed file; a closed index
        is not used again.
        """
        if self._work_handle is None:
            return
        self._index, self._gpu = None, None
        self._work_handle.remove()
        self._work_handle = None

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, mmap: bool = True, use_gpu: bool | None = None, **_: Any
    ) -> OnDiskIVFIndex:
        """Opens a saved on-disk index: lists are mapped and vectors read on demand, not loaded.

        Args:
            path: the directory holding the files.
            mmap: ignored; an on-disk index never loads its vectors.
            use_gpu: ``True`` is refused.

        Raises:
            IndexCorruptError: a file is unreadable or the files disagree.
            ConfigError: ``use_gpu=True``.
        """
        if use_gpu:
            raise ConfigError("an on-disk IVF index searches on the CPU; open it with use_gpu=None")
        faiss = import_faiss()
        path = Path(path)
        meta, ids, x, index = cls._read_saved(path, mmap=True)
        dim, kind = meta["dim"], meta["kind"]
        if index.d != dim or (index.is_trained and index.ntotal != len(ids)):
            raise IndexCorruptError(
                f"'{path / INDEX_FILE}' holds {index.ntotal} vectors of dimension {index.d}, "
                f"but '{IDS_FILE}' {len(ids)} of dimension {dim}"
            )
        if index.is_trained:
            lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
            if isinstance(lists, faiss.OnDiskInvertedLists):
                # FAISS maps the saved file writable; this makes it refuse to change it
                # (changes go to a copy in the work directory, see _writable_lists).
                lists.read_only = True
                lists.prefetch_nthread = _PREFETCH_THREADS
        self = cls._restored(meta, index, False)
        self._train_size = meta.get("train_size")
        self._workdir, self._work_handle = None, None
        self._buffer = DiskVectorBuffer(dim, self._work(), ids, x)  # type: ignore[assignment]
        _log_cpu_search(kind)
        return self

    @classmethod
    def _read_index(cls, path: Path) -> Any:
        faiss = import_faiss()
        # Look for vectors.ivfdata beside vectors.faiss, not where it was first written.
        with _faiss_stdout_to_stderr():
            return faiss.read_index(str(path / INDEX_FILE), faiss.IO_FLAG_ONDISK_SAME_DIR)


def _log_cpu_search(kind: str) -> None:
    if import_faiss().get_num_gpus() > 0:
        logger.info("searching the %s index on the CPU although FAISS sees a GPU: a GPU index would "
                    "copy the on-disk lists into GPU memory", kind)


def saved_on_disk(path: str | os.PathLike[str]) -> bool:
    """Whether the vector files in ``path`` were saved by an :class:`OnDiskIVFIndex`.

    An unreadable ``vectors.json`` answers ``False``; the regular loader then
    reports it.
    """
    try:
        meta = json.loads((Path(path) / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and bool(meta.get("on_disk"))
