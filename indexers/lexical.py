"""BM25 over landmark sentences, English and Chinese, saved without pickle.

Why: dense vectors miss exact names, numbers and rare terms; BM25 hits over the
same sentences are fused with the dense hits. Scoring is bm25s (a precomputed
sparse term-by-sentence score matrix, so a query is a few posting-list sums);
tokenisation is ours so that Chinese is cut into words (jieba) and the same
rules apply at build and query time. The index is derived data: it is rebuilt
from the sentence texts whenever documents change.

Files (all JSON or ``.npy`` loaded with ``allow_pickle=False``):
``lexical.data.npy``, ``lexical.indices.npy``, ``lexical.indptr.npy`` (the
score matrix, CSC by term), ``lexical.vocab.json``, ``lexical.params.json``
and ``lexical.rows.npy`` (landmark row of each indexed sentence).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from hybridctx.errors import IndexCorruptError, InputError, MissingDependencyError

__all__ = ["LexicalIndex", "TokenizerSettings", "lexical_tokens"]

logger = logging.getLogger(__name__)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_TOKEN_RE = re.compile(f"[{_HAN}]+|[^\\W_{_HAN}]+")
_EN_STOP = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in "
    "into is it its may might of on or our should so than that the their them then there these "
    "they this those to was we were what when where which while who whom why will with would "
    "you your".split()
)
_ZH_STOP = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 之 其 这 那 着 过 吗 呢 吧 啊 把 被 对 从 于".split()
)
_JIEBA_LOCK = threading.Lock()
_jieba: Any = None
_PREFIX = "lexical."


@dataclass(frozen=True)
class TokenizerSettings:
    """How text becomes BM25 terms; stored with the index so queries match.

    Attributes:
        stem: strip English plural endings (Harman's S-stemmer).
        cjk_bigrams: add overlapping Han character bigrams to jieba's words.
        search_mode: cut Chinese with ``jieba.cut_for_search`` (words plus their
            sub-words) instead of ``jieba.lcut``.
    """

    stem: bool = True
    cjk_bigrams: bool = True
    search_mode: bool = False


def _get_jieba() -> Any:
    global _jieba
    if _jieba is None:
        with _JIEBA_LOCK:
            if _jieba is None:
                try:
                    import jieba
                except ImportError as exc:
                    raise MissingDependencyError(
                        "jieba", "cpu", "Chinese word segmentation for BM25"
                    ) from exc
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def _s_stem(word: str) -> str:
    """Harman's S-stemmer: plural endings only, so it rarely conflates unrelated words."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def lexical_tokens(text: str, settings: TokenizerSettings = TokenizerSettings()) -> list[str]:
    """BM25 terms of ``text``.

    Latin-script (and any other non-Han) words are split on non-alphanumerics,
    lower-cased, English stopwords dropped, plurals stemmed; numbers are kept.
    Runs of Han characters are cut into words by jieba (minus a few function
    words), plus character bigrams when ``settings.cjk_bigrams``.

    Args:
        text: any text.
        settings: tokenizer options.

    Returns:
        The terms, in text order.
    """
    out: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        run = match.group()
        if "\u3400" <= run[0] <= "\u9fff" or run[0] >= "\U00020000" or "\uf900" <= run[0] <= "\ufaff":
            jieba = _get_jieba()
            words = jieba.cut_for_search(run) if settings.search_mode else jieba.lcut(run)
            out.extend(w for w in words if w not in _ZH_STOP)
            if settings.cjk_bigrams and len(run) > 2:
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            word = run.lower()
            if word in _EN_STOP:
                continue
            out.append(_s_stem(word) if settings.stem else word)
    return out


def _import_bm25s() -> Any:
    try:
        import bm25s
    except ImportError as exc:
        raise MissingDependencyError("bm25s", "cpu", "the BM25 lexical index") from exc
    return bm25s


class LexicalIndex:
    """BM25 (Lucene variant, k1=1.5, b=0.75) over sentences keyed by landmark row.

    Build with :meth:`build`; search with :meth:`search`.
    """

    def __init__(self, model: Any, rows: np.ndarray, settings: TokenizerSettings) -> None:
        self._model = model
        self._rows = np.asarray(rows, dtype=np.int64)
        self.settings = settings

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
        """Indexes sentence texts.

        Args:
            texts: one string per sentence.
            rows: ``(n,) int64`` ascending landmark row of each text; default ``0..n-1``.
            settings: tokenizer options (saved with the index).
            k1: BM25 term-frequency saturation.
            b: BM25 length normalisation.

        Raises:
            InputError: ``rows`` is not ascending or does not match ``texts``.
        """
        bm25s = _import_bm25s()
        vocab: dict[str, int] = {}
        corpus_ids: list[list[int]] = []
        n = 0
        for text in texts:
            ids = [vocab.setdefault(tok, len(vocab)) for tok in lexical_tokens(text, settings)]
            corpus_ids.append(ids)
            n += 1
        rows_arr = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        if rows_arr.shape != (n,) or (n > 1 and not np.all(np.diff(rows_arr) > 0)):
            raise InputError(f"rows must be {n} strictly ascending ints, one per text")
        vocab.setdefault("", len(vocab))  # bm25s reserves an empty term; keeps score matrix width stable
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        if any(corpus_ids):
            model.index((corpus_ids, vocab), show_progress=False, create_empty_token=False)
        else:  # nothing to score (bm25s would divide by a zero average length)
            model.scores = {"data": np.empty(0, np.float32), "indices": np.empty(0, np.int32),
                            "indptr": np.zeros(len(vocab) + 1, np.int64), "num_docs": n}
            model.vocab_dict = vocab
        return cls(model, rows_arr, settings)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> np.ndarray:
        """``(n,) int64`` ascending rows of the indexed sentences."""
        return self._rows

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed sentence: ``(n,) float32`` aligned with :attr:`rows`."""
        vocab = self._model.vocab_dict
        terms = [vocab[t] for t in lexical_tokens(query, self.settings) if t in vocab and t != ""]
        out = np.zeros(len(self._rows), dtype=np.float32)
        s = self._model.scores
        data, indices, indptr = s["data"], s["indices"], s["indptr"]
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
        """Writes the ``lexical.*`` files into directory ``path``; returns their names."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        s = self._model.scores
        arrays = {"data": s["data"], "indices": s["indices"], "indptr": s["indptr"], "rows": self._rows}
        names = []
        for key, arr in arrays.items():
            np.save(path / f"{_PREFIX}{key}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            names.append(f"{_PREFIX}{key}.npy")
        vocab_terms = sorted(self._model.vocab_dict, key=self._model.vocab_dict.__getitem__)
        vocab_json = json.dumps(vocab_terms, ensure_ascii=False)
        (path / f"{_PREFIX}vocab.json").write_text(vocab_json, encoding="utf-8")
        params = {"k1": self._model.k1, "b": self._model.b, "method": self._model.method,
                  "num_docs": int(s["num_docs"]), "tokenizer": asdict(self.settings)}
        params_json = json.dumps(params, indent=2, sort_keys=True) + "\n"
        (path / f"{_PREFIX}params.json").write_text(params_json, encoding="utf-8")
        return names + [f"{_PREFIX}vocab.json", f"{_PREFIX}params.json"]

    @classmethod
    def exists(cls, path: str | os.PathLike[str]) -> bool:
        """Whether directory ``path`` holds a saved lexical index."""
        return (Path(path) / f"{_PREFIX}params.json").is_file()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LexicalIndex:
        """Reads an index written by :meth:`save` (no pickle).

        Raises:
            IndexCorruptError: a file is missing, unreadable or inconsistent.
        """
        bm25s = _import_bm25s()
        path = Path(path)
        try:
            params = json.loads((path / f"{_PREFIX}params.json").read_text(encoding="utf-8"))
            terms = json.loads((path / f"{_PREFIX}vocab.json").read_text(encoding="utf-8"))
            arr = {
                k: np.load(path / f"{_PREFIX}{k}.npy", allow_pickle=False)
                for k in ("data", "indices", "indptr", "rows")
            }
            settings = TokenizerSettings(**params["tokenizer"])
            model = bm25s.BM25(k1=params["k1"], b=params["b"], method=params["method"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"lexical index files in '{path}' are unreadable: {exc}") from exc
        if len(arr["indptr"]) != len(terms) + 1 or len(arr["rows"]) != params["num_docs"]:
            raise IndexCorruptError(f"lexical index files in '{path}' disagree with each other")
        model.scores = {"data": arr["data"], "indices": arr["indices"], "indptr": arr["indptr"],
                        "num_docs": int(params["num_docs"])}
        model.vocab_dict = {t: i for i, t in enumerate(terms)}
        model.unique_token_ids_set = set(model.vocab_dict.values())
        return cls(model, arr["rows"], settings)

