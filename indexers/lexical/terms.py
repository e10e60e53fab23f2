"""BM25 terms of a text, English and Chinese: one tokenizer for building and querying.

Why its own module: the index builder (:mod:`bm25_build`) and the index that
answers queries (:mod:`lexical`) must cut text into the same terms, and the
builder must not import the index it builds. Latin-script words are lower-cased,
stopwords dropped and plurals stemmed; Han runs are cut into words by jieba
(loaded on first use) plus character bigrams.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

from hybridctx.errors import MissingDependencyError

__all__ = ["TokenizerSettings", "lexical_tokens"]

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
