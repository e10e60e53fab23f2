"""Exact token counting in the tokenizer of the model that will read the context.

Why: a packed context must never exceed its budget *in the target model's
tokenizer*. tiktoken normally downloads its BPE files on first use, which fails
offline, so the two encodings API models use (``cl100k_base``, ``o200k_base``)
ship inside the package; any Hugging Face ``tokenizer.json`` counts for local
models.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from hybridctx.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import tiktoken

__all__ = ["TIKTOKEN_ENCODINGS", "TokenCounter", "get_counter"]

TIKTOKEN_ENCODINGS = ("cl100k_base", "o200k_base")
_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_STATIC = Path(__file__).resolve().parents[1] / "_static" / "tiktoken"
_PATCH_LOCK = threading.Lock()


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens of a text exactly as the target model will."""

    name: str

    def count(self, text: str) -> int: ...


class TiktokenCounter:
    """A tiktoken encoding loaded from the shipped rank files."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._encoding = _load_tiktoken(name)

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text))

    def token_starts(self, text: str) -> "np.ndarray":
        """``(n,) int64`` char offset where each token of ``text`` begins."""
        import numpy as np

        ids = self._encoding.encode_ordinary(text)
        if not ids:
            return np.zeros(0, dtype=np.int64)
        byte_ends = np.cumsum(self._byte_lengths()[np.asarray(ids, dtype=np.int64)])
        byte_starts = np.concatenate(([0], byte_ends[:-1]))
        if text.isascii():
            return byte_starts
        raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        char_of_byte = np.cumsum((raw & 0xC0) != 0x80) - 1  # a char starts at every non-continuation byte
        return char_of_byte[np.minimum(byte_starts, len(raw) - 1)]

    def _byte_lengths(self) -> "np.ndarray":
        lengths = getattr(self, "_lengths", None)
        if lengths is None:
            import numpy as np

            decode = self._encoding.decode_single_token_bytes
            size = self._encoding.n_vocab
            lengths = np.zeros(size, dtype=np.int64)
            for token in range(size):
                try:
                    lengths[token] = len(decode(token))
                except KeyError:  # holes in the vocabulary (special-token range)
                    pass
            self._lengths = lengths
        return lengths

    def count_many(self, texts: list[str]) -> list[int]:
        # A plain loop: tiktoken's batch API adds a thread pool whose overhead
        # doubles the cost for the short texts packing counts.
        encode = self._encoding.encode_ordinary
        return [len(encode(t)) for t in texts]


class HFTokenizerCounter:
    """Counts with a Hugging Face ``tokenizer.json`` (no special tokens added)."""

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise ConfigError(
                f"tokenizer '{path}' is neither {', '.join(TIKTOKEN_ENCODINGS)} nor a "
                "tokenizer.json file or a directory holding one"
            )
        self.name = str(path)
        try:
            self._tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ConfigError(
                f"tokenizer '{path}' is not a Hugging Face tokenizer.json ({reason}); give "
                f"{', '.join(TIKTOKEN_ENCODINGS)}, a tokenizer.json file or a directory holding one"
            ) from None
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def token_starts(self, text: str) -> "np.ndarray":
        """``(n,) int64`` char offset where each token of ``text`` begins."""
        import numpy as np

        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        return np.asarray([start for start, _ in offsets], dtype=np.int64)

    def count_many(self, texts: list[str]) -> list[int]:
        encoded = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encoded]


@lru_cache(maxsize=8)
def get_counter(name: str = "cl100k_base") -> TokenCounter:
    """Return a (cached) token counter.

    Args:
        name: ``cl100k_base``, ``o200k_base``, or a path to a ``tokenizer.json``
            or a model directory containing one.

    Raises:
        ConfigError: the name is neither a known encoding nor a tokenizer file.
    """
    if name in TIKTOKEN_ENCODINGS:
        return TiktokenCounter(name)
    return HFTokenizerCounter(name)


def count_many(counter: TokenCounter, texts: list[str]) -> list[int]:
    """Token counts of many texts, batched when the counter supports it."""
    batch = getattr(counter, "count_many", None)
    return list(batch(texts)) if batch else [counter.count(t) for t in texts]


def _load_tiktoken(name: str) -> tiktoken.Encoding:
    try:
        import tiktoken
        import tiktoken_ext.openai_public as openai_public
    except ImportError as exc:  # a core dependency: only a broken install gets here
        raise ConfigError("exact token counting needs the 'tiktoken' package; reinstall hybridctx "
                          "(pip install 'hybridctx') or pip install tiktoken") from exc

    data = (_STATIC / f"{name}.tiktoken").read_bytes()
    if hashlib.sha256(data).hexdigest() != _SHA256[name]:
        raise ConfigError(f"shipped tiktoken file '{name}.tiktoken' fails its checksum; reinstall hybridctx")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    # tiktoken_ext knows each encoding's regex and special tokens but insists on
    # fetching the ranks by URL; hand it the shipped ranks instead.
    with _PATCH_LOCK:
        original = openai_public.load_tiktoken_bpe
        openai_public.load_tiktoken_bpe = lambda *args, **kwargs: ranks
        try:
            spec = getattr(openai_public, name)()
        finally:
            openai_public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**spec)
