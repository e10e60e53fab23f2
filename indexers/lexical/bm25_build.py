"""Builds the BM25 score matrix from a stream of sentences, in memory bounded by the vocabulary.

Why: holding every sentence's term ids in Python lists (as bm25s's builder
needs them) made the lexical index the peak of ingestion, growing with the
corpus. Here the sentences stream past once and memory holds the vocabulary,
its document frequencies, 12 bytes per sentence (row and length) and fixed-size
work buffers; everything else goes through files:

1. each sentence is tokenised (:func:`lexical_tokens`) and its term ids
   buffered; every ~130k ids the buffer is folded into ``(term, sentence, tf)``
   postings (int32 triples) appended to a work file, and the document
   frequencies are updated;
2. the postings are read back in chunks, scored, and placed by term into
   slabs of the CSC matrix (a range of terms at a time, ~2M postings), which
   are written out in order, so the ``.npy`` files are written sequentially.

Scores are those of bm25s ``method="lucene"`` (bit for bit in float32, up to
the last bit of ``log``): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and
``tf / (tf + k1 * (1 - b + b * len / avg_len))``, where ``len`` counts terms with
repeats; bm25s's Lucene variant leaves out the constant ``k1 + 1`` factor, which
does not change rankings. Columns are term ids in order of first appearance,
plus bm25s's empty term last; postings within a column ascend by sentence.
"""

from __future__ import annotations

import logging
import os
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np

from hybridctx.errors import InputError
from hybridctx.indexers.lexical.terms import TokenizerSettings, lexical_tokens

__all__ = ["BM25Build", "NpyWriter", "build_bm25"]

logger = logging.getLogger(__name__)

#: Term ids buffered before they are folded into postings (0.5 MB, plus ~8 MB of sort work).
FOLD_TERMS = 1 << 17
#: Postings per slab of the score matrix (16 MB of scores and sentence ids).
SLAB_POSTINGS = 1 << 21
_READ_POSTINGS = 1 << 16  # postings read back per chunk (0.8 MB)
_PROGRESS_EVERY = 4096  # sentences between progress callbacks
_LOG_EVERY_S = 10.0
_POSTINGS_FILE = "postings.work"


@dataclass(frozen=True)
class BM25Build:
    """What :func:`build_bm25` wrote (``lexical.{data,indices,indptr,rows}.npy``) and knows.

    Attributes:
        vocab: term -> column, the empty term last.
        num_docs: sentences indexed.
        postings: non-zero scores (the length of ``data`` and ``indices``).
        avg_len: mean terms per sentence.
    """

    vocab: dict[str, int]
    num_docs: int
    postings: int
    avg_len: float


class NpyWriter:
    """Writes a 1-d ``.npy`` file of known length piece by piece (never the whole array in memory)."""

    def __init__(self, path: Path, dtype: np.dtype, length: int) -> None:
        self._fh = open(path, "wb")
        self._dtype, self._left = np.dtype(dtype), int(length)
        header = {"descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False, "shape": (self._left,)}
        np.lib.format.write_array_header_1_0(self._fh, header)

    def write(self, part: np.ndarray) -> None:
        part = np.ascontiguousarray(part, dtype=self._dtype)
        if len(part) > self._left:
            raise ValueError("more values written than the .npy header announced")
        self._fh.write(memoryview(part).cast("B"))
        self._left -= len(part)

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()
        if self._left and exc[0] is None:
            raise ValueError(f"{self._left} values fewer than the .npy header announced")


def build_bm25(
    sentences: Iterable[tuple[int, str]],
    out: str | os.PathLike[str],
    settings: TokenizerSettings = TokenizerSettings(),
    *,
    k1: float = 1.5,
    b: float = 0.75,
    progress: Callable[[int], None] | None = None,
    slab_postings: int = SLAB_POSTINGS,
) -> BM25Build:
    """Indexes ``(row, text)`` pairs into ``lexical.*.npy`` files in directory ``out``.

    Args:
        sentences: ``(landmark row, sentence text)``, rows strictly ascending; read once.
        out: an existing directory; a work file is written there and removed.
        settings: tokenizer options.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
        progress: called with the number of sentences tokenised since its last call.
        slab_postings: postings placed per pass over the work file (memory vs passes).

    Returns:
        The vocabulary and counts; the matrix is in ``out`` (``data`` ``(nnz,) float32``,
        ``indices`` ``(nnz,) int32`` sentence positions, ``indptr`` ``(V + 1,) int64``,
        ``rows`` ``(n,) int64``).

    Raises:
        InputError: the rows are not strictly ascending.
    """
    out = Path(out)
    started = time.perf_counter()
    work = out / _POSTINGS_FILE
    try:
        with open(work, "wb") as fh:
            vocab, df, lengths, rows = _tokenise(sentences, settings, fh, progress)
        vocab.setdefault("", len(vocab))  # bm25s's empty term: keeps the matrix width of old indexes
        df = np.concatenate([df, np.zeros(max(0, len(vocab) - len(df)), np.int64)])[: len(vocab)]
        tokenised = time.perf_counter() - started
        lens = np.frombuffer(lengths, dtype=np.int32)
        total = int(lens.sum(dtype=np.int64))
        avg_len = total / len(lens) if len(lens) else 0.0
        indptr = np.zeros(len(vocab) + 1, np.int64)
        np.cumsum(df, out=indptr[1:])
        _write_matrix(out, work, indptr, _idf(df, len(lens)), lens, avg_len, k1, b, slab_postings)
        np.save(out / "lexical.indptr.npy", indptr, allow_pickle=False)
        np.save(out / "lexical.rows.npy", np.frombuffer(rows, dtype=np.int64), allow_pickle=False)
    finally:
        work.unlink(missing_ok=True)
    logger.info("BM25 over %d sentences: %d terms, %d postings in %.2f s (tokenising %.2f s)",
                len(lens), len(vocab), int(indptr[-1]), time.perf_counter() - started, tokenised)
    return BM25Build(vocab, len(lens), int(indptr[-1]), avg_len)


def _tokenise(
    sentences: Iterable[tuple[int, str]],
    settings: TokenizerSettings,
    fh: BinaryIO,
    progress: Callable[[int], None] | None,
) -> tuple[dict[str, int], np.ndarray, array, array]:
    """Pass 1: the vocabulary, document frequencies, lengths and rows; postings to ``fh``."""
    vocab: dict[str, int] = {}
    df = np.zeros(0, np.int64)
    lengths, rows, buf = array("i"), array("q"), array("i")
    first = 0  # sentence number of the first one whose ids are in ``buf``
    last_log = time.perf_counter()
    for row, text in sentences:
        if rows and row <= rows[-1]:
            raise InputError(f"rows must be strictly ascending ints, one per text; {row} follows {rows[-1]}")
        ids = [vocab.setdefault(term, len(vocab)) for term in lexical_tokens(text, settings)]
        buf.extend(ids)
        lengths.append(len(ids))
        rows.append(int(row))
        if len(buf) >= FOLD_TERMS:
            df = _fold(buf, lengths, first, df, len(vocab), fh)
            buf, first = array("i"), len(lengths)
            if time.perf_counter() - last_log > _LOG_EVERY_S:
                last_log = time.perf_counter()
                logger.info("BM25: %d sentences tokenised, %d terms", len(lengths), len(vocab))
        if progress is not None and len(lengths) % _PROGRESS_EVERY == 0:
            progress(_PROGRESS_EVERY)
    df = _fold(buf, lengths, first, df, len(vocab), fh)
    if progress is not None and len(lengths) % _PROGRESS_EVERY:
        progress(len(lengths) % _PROGRESS_EVERY)
    return vocab, df, lengths, rows


def _fold(buf: array, lengths: array, first: int, df: np.ndarray, n_terms: int, fh: BinaryIO) -> np.ndarray:
    """Turns buffered term ids into ``(term, sentence, tf)`` postings; returns the updated ``df``."""
    if len(df) < n_terms:
        df = np.concatenate([df, np.zeros(max(n_terms - len(df), len(df) // 2), np.int64)])
    if not buf:
        return df
    ids = np.frombuffer(buf, dtype=np.int32)
    lens = np.frombuffer(lengths, dtype=np.int32)[first:]
    docs = np.repeat(np.arange(first, first + len(lens), dtype=np.int64), lens)
    keys, tf = np.unique((docs << 32) | ids, return_counts=True)  # by sentence, then term
    terms = (keys & 0xFFFFFFFF).astype(np.int32)
    np.stack([terms, (keys >> 32).astype(np.int32), tf.astype(np.int32)], axis=1).tofile(fh)
    df[: n_terms] += np.bincount(terms, minlength=n_terms)
    return df


def _idf(df: np.ndarray, n: int) -> np.ndarray:
    """``(V,) float32`` Lucene idf of each term (0 for a term in no sentence)."""
    idf = np.zeros(len(df), np.float32)
    seen = df > 0
    idf[seen] = np.log(1 + (n - df[seen] + 0.5) / (df[seen] + 0.5))
    return idf


def _postings(path: Path) -> Iterator[np.ndarray]:
    """The work file's ``(m, 3) int32`` postings, chunk by chunk."""
    with open(path, "rb") as fh:
        while True:
            chunk = np.fromfile(fh, dtype=np.int32, count=3 * _READ_POSTINGS)
            if not len(chunk):
                return
            yield chunk.reshape(-1, 3)


def _write_matrix(out: Path, work: Path, indptr: np.ndarray, idf: np.ndarray, lens: np.ndarray,
                  avg_len: float, k1: float, b: float, slab_postings: int) -> None:
    """Pass 2: scores the postings and writes them sorted by term (CSC), a slab of terms at a time."""
    nnz, n_terms = int(indptr[-1]), len(indptr) - 1
    with NpyWriter(out / "lexical.data.npy", np.float32, nnz) as data, \
            NpyWriter(out / "lexical.indices.npy", np.int32, nnz) as indices:
        t0 = 0
        while t0 < n_terms and indptr[t0] < nnz:
            base = int(indptr[t0])
            t1 = max(t0 + 1, int(np.searchsorted(indptr, base + slab_postings, side="right")) - 1)
            t1 = min(t1, n_terms)
            size = int(indptr[t1]) - base
            slab_scores, slab_docs = np.empty(size, np.float32), np.empty(size, np.int32)
            heads = indptr[t0:t1] - base  # next free slot of each term in the slab
            for chunk in _postings(work):
                if t0 > 0 or t1 < n_terms:
                    chunk = chunk[(chunk[:, 0] >= t0) & (chunk[:, 0] < t1)]
                if not len(chunk):
                    continue
                order = np.argsort(chunk[:, 0], kind="stable")  # by term, sentences stay ascending
                terms, docs, tf = (chunk[order, j] for j in range(3))
                local = terms - t0
                counts = np.bincount(local, minlength=t1 - t0)
                rank = np.arange(len(terms)) - (np.cumsum(counts) - counts)[local]
                pos = heads[local] + rank
                heads += counts
                tf64 = tf.astype(np.float64)
                # bm25s's expression, in its order, so the float32 scores agree bit for bit
                tfc = tf64 / (k1 * ((1 - b) + b * lens[docs] / avg_len) + tf64)
                slab_scores[pos] = idf[terms] * tfc
                slab_docs[pos] = docs
            data.write(slab_scores)
            indices.write(slab_docs)
            t0 = t1
