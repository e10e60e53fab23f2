"""BM25 over landmark sentences, English and Chinese, saved without pickle.

Why: dense vectors miss exact names, numbers and rare terms; BM25 hits over the
same sentences are fused with the dense hits. Scores are precomputed into a
sparse term-by-sentence matrix (bm25s's layout and Lucene scoring), so a query
is a few posting-list sums. The matrix is built by :mod:`bm25_build` from a
stream of sentences in bounded memory and read back memory-mapped, so a large
index is paged in as queries touch it rather than read whole. Tokenisation is
ours (:mod:`lexical_terms`) so that Chinese is cut into words (jieba) and the
same rules apply at build and query time. The index is derived data: it is
rebuilt from the sentence texts whenever documents change.

Files (all JSON or ``.npy`` loaded with ``allow_pickle=False``):
``lexical.data.npy``, ``lexical.indices.npy``, ``lexical.indptr.npy`` (the
score matrix, CSC by term), ``lexical.vocab.json``, ``lexical.params.json``
and ``lexical.rows.npy`` (landmark row of each indexed sentence).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from hybridctx.errors import IndexCorruptError, InputError
from hybridctx.indexers.lexical.bm25_build import build_bm25
from hybridctx.indexers.lexical.terms import TokenizerSettings, lexical_tokens
from hybridctx.indexers.workdirs import WorkDir, work_dir

__all__ = ["LexicalIndex", "TokenizerSettings", "lexical_tokens"]

logger = logging.getLogger(__name__)

_PREFIX = "lexical."
_ARRAYS = ("data", "indices", "indptr", "rows")


class LexicalIndex:
    """BM25 (Lucene variant, k1=1.5, b=0.75) over sentences keyed by landmark row.

    Build with :meth:`build` or :meth:`from_sentences`; search with :meth:`search`.
    """

    def __init__(self, arrays: dict[str, np.ndarray], vocab: dict[str, int], settings: TokenizerSettings, *,
                 k1: float, b: float, workdir: Path | None = None) -> None:
        # Plain ndarray views of the (memory-mapped) files: np.memmap's slicing
        # wraps every posting list in a new memmap object, which costs per query term.
        self._data, self._indices, self._indptr = (np.asarray(arrays[k]) for k in ("data", "indices", "indptr"))
        self._rows = np.asarray(arrays["rows"], dtype=np.int64)
        self._vocab = vocab
        self.settings = settings
        self.k1, self.b = float(k1), float(b)
        self._workdir = workdir  # where the array files are, never written again: saves hard-link them
        self._work: WorkDir | None = None  # the private work directory this index was built in

    @classmethod
    def from_sentences(
        cls,
        sentences: Iterable[tuple[int, str]],
        settings: TokenizerSettings = TokenizerSettings(),
        *,
        k1: float = 1.5,
        b: float = 0.75,
        progress: Callable[[int], None] | None = None,
    ) -> LexicalIndex:
        """Indexes a stream of ``(landmark row, sentence text)``, rows strictly ascending.

        Memory holds the vocabulary and ~12 bytes per sentence; the score matrix is
        written to a private work directory (beside the index being saved, else in
        ``TMPDIR``; see :mod:`workdirs`) and mapped from there.

        Args:
            sentences: read once, e.g. straight from an SQLite cursor.
            settings: tokenizer options (saved with the index).
            k1: BM25 term-frequency saturation.
            b: BM25 length normalisation.
            progress: called with the number of sentences tokenised since its last call
                (a ``tqdm.update``).

        Raises:
            InputError: the rows are not strictly ascending.
        """
        work = work_dir("bm25")
        try:
            built = build_bm25(sentences, work.path, settings, k1=k1, b=b, progress=progress)
            arrays = _map_arrays(work.path)
        except BaseException:
            work.remove()
            raise
        index = cls(arrays, built.vocab, settings, k1=k1, b=b, workdir=work.path)
        work.bind(index)  # removed with the index, or by adopt_saved()
        index._work = work
        return index

    @classmethod
    def build(
        cls,
        texts: Sequence[str] | Iterable[str],
        rows: np.ndarray | None = None,
        settings: TokenizerSettings = TokenizerSettings(),
        *,
        k1: float = 1.5,
        b: float = 0.75,
    ) -> LexicalIndex:
        """Indexes sentence texts (see :meth:`from_sentences` for a stream of rows and texts).

        Args:
            texts: one string per sentence.
            rows: ``(n,) int64`` ascending landmark row of each text; default ``0..n-1``.
            settings: tokenizer options (saved with the index).
            k1: BM25 term-frequency saturation.
            b: BM25 length normalisation.

        Raises:
            InputError: ``rows`` is not ascending or does not match ``texts``.
        """
        given = None if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
        counted = [0]

        def pairs() -> Iterator[tuple[int, str]]:
            for i, text in enumerate(texts):
                counted[0] = i + 1
                if given is not None and i >= len(given):
                    raise InputError(f"rows must be {len(given)} strictly ascending ints, one per text; "
                                     "more texts were given")
                yield (i if given is None else int(given[i])), text

        index = cls.from_sentences(pairs(), settings, k1=k1, b=b)
        if given is not None and counted[0] != len(given):
            raise InputError(f"rows must be {counted[0]} strictly ascending ints, one per text; got {len(given)}")
        return index

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> np.ndarray:
        """``(n,) int64`` ascending rows of the indexed sentences."""
        return self._rows

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed sentence: ``(n,) float32`` aligned with :attr:`rows`."""
        vocab = self._vocab
        terms = [vocab[t] for t in lexical_tokens(query, self.settings) if t in vocab and t != ""]
        out = np.zeros(len(self._rows), dtype=np.float32)
        data, indices, indptr = self._data, self._indices, self._indptr
        # A term's postings name each sentence once, so plain fancy-index addition
        # is exact here (and far faster than the np.add.at bm25s uses).
        for term in terms:
            lo, hi = indptr[term], indptr[term + 1]
            out[indices[lo:hi]] += data[lo:hi]
        return out

    def search(
        self, query: str, k: int, allowed_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best-scoring sentences that share a term with ``query``.

        Args:
            query: the question.
            k: most results to return, >= 1.
            allowed_rows: ``(m,) int64`` landmark rows; when given, only these can be returned.

        Returns:
            ``scores`` ``(r,) float32`` descending and ``rows`` ``(r,) int64``,
            ``r <= k``; sentences scoring 0 (no shared term) are left out.
        """
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        scores = self.scores(query)
        if allowed_rows is not None:
            allowed = np.asarray(allowed_rows, dtype=np.int64).reshape(-1)
            pos = np.searchsorted(self._rows, allowed)
            inside = pos < len(self._rows)
            pos = pos[inside]
            pos = np.unique(pos[self._rows[pos] == allowed[inside]])
            cand = pos[scores[pos] > 0]
        else:
            cand = np.flatnonzero(scores > 0)
        if len(cand) > k:
            cand = cand[np.argpartition(-scores[cand], k - 1)[:k]]
        order = np.lexsort((self._rows[cand], -scores[cand]))
        cand = cand[order]
        return scores[cand].astype(np.float32), self._rows[cand]

    # -- persistence ----------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Writes the ``lexical.*`` files into directory ``path``; returns their names.

        Files this index built are hard-linked (or copied) from its work directory
        (or, once saved, from the index it was saved into), so saving a large index
        reads nothing into memory.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {"data": self._data, "indices": self._indices, "indptr": self._indptr, "rows": self._rows}
        names = []
        same = self._workdir is not None and os.path.samefile(self._workdir, path)
        for key, arr in arrays.items():
            name = f"{_PREFIX}{key}.npy"
            if same:  # saved here already (the files this index maps)
                names.append(name)
                continue
            (path / name).unlink(missing_ok=True)  # it may be a link to another index's file: never write through
            if self._workdir is not None:
                _link_or_copy(self._workdir / name, path / name)
            else:
                np.save(path / name, np.ascontiguousarray(arr), allow_pickle=False)
            names.append(name)
        vocab_terms = sorted(self._vocab, key=self._vocab.__getitem__)
        vocab_json = json.dumps(vocab_terms, ensure_ascii=False)
        (path / f"{_PREFIX}vocab.json").write_text(vocab_json, encoding="utf-8")
        params = {"k1": self.k1, "b": self.b, "method": "lucene",
                  "num_docs": len(self._rows), "tokenizer": asdict(self.settings)}
        params_json = json.dumps(params, indent=2, sort_keys=True) + "\n"
        (path / f"{_PREFIX}params.json").write_text(params_json, encoding="utf-8")
        return names + [f"{_PREFIX}vocab.json", f"{_PREFIX}params.json"]

    def adopt_saved(self, path: str | os.PathLike[str]) -> None:
        """After :meth:`save` into ``path`` (now in place): maps the saved files instead and
        removes the work directory, so nothing of the build outlives the save."""
        if self._work is None:
            return
        path = Path(path)
        arrays = _map_arrays(path)
        self._data, self._indices, self._indptr = (np.asarray(arrays[k]) for k in ("data", "indices", "indptr"))
        self._rows = np.asarray(arrays["rows"], dtype=np.int64)
        self._workdir = path
        self._work.remove()
        self._work = None

    @classmethod
    def exists(cls, path: str | os.PathLike[str]) -> bool:
        """Whether directory ``path`` holds a saved lexical index."""
        return (Path(path) / f"{_PREFIX}params.json").is_file()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LexicalIndex:
        """Maps an index written by :meth:`save` (no pickle; pages are read as queries touch them).

        Raises:
            IndexCorruptError: a file is missing, unreadable or inconsistent.
        """
        path = Path(path)
        try:
            params = json.loads((path / f"{_PREFIX}params.json").read_text(encoding="utf-8"))
            terms = json.loads((path / f"{_PREFIX}vocab.json").read_text(encoding="utf-8"))
            arrays = _map_arrays(path)
            settings = TokenizerSettings(**params["tokenizer"])
            k1, b, method, num_docs = float(params["k1"]), float(params["b"]), params["method"], params["num_docs"]
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise TypeError(f"{_PREFIX}vocab.json must be a list of strings")
            if not isinstance(num_docs, int) or isinstance(num_docs, bool):
                raise TypeError(f"num_docs {num_docs!r} is not an integer")
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise IndexCorruptError(f"lexical index files in '{path}' are unreadable: {exc}") from exc
        if method != "lucene":
            raise IndexCorruptError(f"lexical index in '{path}' uses BM25 method {method!r}; only 'lucene' is read")
        indptr = arrays["indptr"]
        if (len(indptr) != len(terms) + 1 or len(arrays["rows"]) != num_docs
                or not len(arrays["data"]) == len(arrays["indices"]) == int(indptr[-1])):
            raise IndexCorruptError(f"lexical index files in '{path}' disagree with each other")
        return cls(arrays, {t: i for i, t in enumerate(terms)}, settings, k1=k1, b=b)


def _map_arrays(path: Path) -> dict[str, np.ndarray]:
    """The four ``lexical.*.npy`` arrays of directory ``path``, memory-mapped read-only."""
    arrays = {}
    for key in _ARRAYS:
        arr = np.load(path / f"{_PREFIX}{key}.npy", mmap_mode="r", allow_pickle=False)
        if arr.ndim != 1:
            raise ValueError(f"{_PREFIX}{key}.npy must be 1-d, not of shape {arr.shape}")
        arrays[key] = arr
    return arrays


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-links ``src`` (never written again) to ``dst``; copies it across file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
