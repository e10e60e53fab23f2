"""An encoder that remembers windows it has read, for needle-in-a-haystack runs.

Why: a NIAH grid indexes the same haystack again and again with one sentence
added (128k tokens × 11 depths would be 1.4M tokens to encode per length).
The windowed encoder reads a document in windows, and a
landmark vector depends only on the tokens of the window it is read from and
on the sentence's place in it. So a window whose token ids and owned sentence
ranges are the same as before gives the same vectors: this wrapper keys each
window by a hash of exactly that, encodes only windows it has not seen, and
returns what the plain encoder would (up to float rounding of a different
batch). A needle changes the windows around it; the greedy window plan then
falls back in step with the haystack's own plan within a few windows, so a
trial costs a few windows, and a shorter length reuses the longer one's prefix.

It also remembers the token offsets of the last text: indexing asks for them
just before encoding the same text, and tokenising a long haystack twice costs seconds.

It relies on the encoder's internals (its special tokens, window length and
``_encode_windows``) and repeats its window planning (``_prepare``), so it
only caches the ``context="window"`` mode; other modes are passed through
uncached (logged). A test checks that it agrees with the plain encoder.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

__all__ = ["CachedWindowEncoder"]

logger = logging.getLogger(__name__)


class CachedWindowEncoder:
    """Wraps a :class:`~hybridctx.embeddings.WindowedLandmarkEncoder`; same identity, same vectors.

    Args:
        base: the encoder to wrap (every attribute but ``encode_documents`` is its own).
        max_vectors: most landmark vectors kept (oldest windows are dropped first);
            500k vectors of 384 floats are about 730 MB.
        show_progress: progress bar when a call has many windows to encode.

    Attributes:
        windows_seen: windows asked for so far.
        windows_encoded: windows actually run through the model.
        encode_seconds: time spent in ``encode_documents``.
    """

    def __init__(self, base: Any, *, max_vectors: int = 500_000, show_progress: bool | None = None) -> None:
        from hybridctx.embeddings.registry import adopt_record

        self.base = base
        adopt_record(self, base)  # an index built through the cache reopens with the base encoder
        self.max_vectors = max_vectors
        self.show_progress = show_progress
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cached_vectors = 0
        self.windows_seen = 0
        self.windows_encoded = 0
        self.encode_seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        if name == "base":  # not set yet (copy, unpickling): do not recurse
            raise AttributeError(name)
        return getattr(self.base, name)

    def stats(self) -> dict[str, Any]:
        """Windows asked for, encoded, and the seconds spent."""
        return {"windows_seen": self.windows_seen, "windows_encoded": self.windows_encoded,
                "encode_seconds": round(self.encode_seconds, 3), "cached_vectors": self._cached_vectors}

    def encode_documents(self, documents: Sequence[tuple[str, Any]], *, show_progress: bool | None = None) -> list[np.ndarray]:
        """As the base encoder's ``encode_documents``, reading only unseen windows."""
        base = self.base
        if base.config.context != "window":
            logger.info("window cache off: encoder context %r also reads sentences alone; encoding in full",
                        base.config.context)
            return base.encode_documents(documents, show_progress=show_progress)
        started = time.perf_counter()
        base._load()
        prepared, keys, owners, out = [], [], [], []
        for text, sentences in documents:
            p = self._prepare(text, sentences)
            if base._mostly_unknown(p["ids"]):  # as the base does: no vectors for unreadable text
                logger.info("a document is mostly unknown tokens for %s; it gets no dense vectors", base.spec.name)
                p = None
            prepared.append(p)
            k, o = _window_keys(p) if p is not None else ([], [])
            keys.append(k)
            owners.append(o)
        todo: dict[bytes, tuple[int, int]] = {}
        for d, doc_keys in enumerate(keys):
            for w, key in enumerate(doc_keys):
                self.windows_seen += 1
                if key in self._cache:
                    self._cache.move_to_end(key)
                elif key not in todo:
                    todo[key] = (d, w)
        self._encode(prepared, owners, todo)
        dim = base.dim
        for d, p in enumerate(prepared):
            n = len(documents[d][1]) if p is None else len(p["ranges"])
            vec = np.zeros((n, dim), dtype=np.float32)
            for w, key in enumerate(keys[d]):
                vec[owners[d][w]] = self._cache[key]
            out.append(_normalise(vec))
        self._evict()  # only now: every window of this call had to stay until assembled
        self.encode_seconds += time.perf_counter() - started
        return out

    def _prepare(self, text: str, sentences: Any) -> dict[str, Any]:
        """The base's ``_prepare`` (tokens, sentence token ranges, window plan), with remembered tokens."""
        from hybridctx.embeddings.windows import plan_windows, sentence_token_ranges

        base = self.base
        offsets, ids = base.token_offsets(text)  # the base remembers recent documents' tokens
        sent = np.asarray(sentences, dtype=np.int64).reshape(-1, 2)
        ranges = sentence_token_ranges(offsets, sent) if len(sent) else np.zeros((0, 2), np.int64)
        if base.config.pooling == "landmark" and len(ranges):  # a landmark token after each sentence
            ids = np.insert(ids, ranges[:, 1], base._landmark_id)
            ranges = ranges + np.arange(len(ranges), dtype=np.int64)[:, None]
            ranges[:, 1] += 1
        length = base.window - len(base._prefix) - len(base._suffix)
        plan = plan_windows(ranges, len(ids), length, min(base.overlap, length - 1),
                            end_at_sentence=base.window_end == "sentence")
        return {"ids": ids, "ranges": ranges, "plan": plan}

    def _encode(self, prepared: list, owners: list, todo: dict[bytes, tuple[int, int]]) -> None:
        """Run the windows in ``todo`` through the model (batched together) and cache them."""
        if not todo:
            return
        subsets, where = [], []
        for d, p in enumerate(prepared):
            mine = [(key, w) for key, (dd, w) in todo.items() if dd == d]
            if not mine:
                continue
            assignment = np.full(len(p["ranges"]), -1, dtype=np.int64)  # -1: read by no window here
            for k, (_, w) in enumerate(mine):
                assignment[owners[d][w]] = k
            plan = replace(p["plan"], windows=p["plan"].windows[[w for _, w in mine]], assignment=assignment)
            subsets.append({"ids": p["ids"], "ranges": p["ranges"], "plan": plan})
            where.append((d, mine))
        show = self.show_progress if len(todo) > 64 else False
        results = self.base._encode_windows(subsets, show, len(todo))
        for (d, mine), vectors in zip(where, results):
            for key, w in mine:
                self._remember(key, vectors[owners[d][w]].copy())
        self.windows_encoded += len(todo)

    def _remember(self, key: bytes, vectors: np.ndarray) -> None:
        self._cache[key] = vectors
        self._cached_vectors += len(vectors)

    def _evict(self) -> None:
        while self._cached_vectors > self.max_vectors and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached_vectors -= len(dropped)


def _window_keys(prepared: dict[str, Any]) -> tuple[list[bytes], list[np.ndarray]]:
    """Per window: a hash of its token ids and its sentences' ranges relative to it, and those sentences."""
    plan, ids, ranges = prepared["plan"], prepared["ids"], prepared["ranges"]
    order = np.argsort(plan.assignment, kind="stable")
    bounds = np.searchsorted(plan.assignment[order], np.arange(len(plan.windows) + 1))
    keys, owners = [], []
    for w, (a, b) in enumerate(plan.windows):
        mine = order[bounds[w] : bounds[w + 1]]
        h = hashlib.blake2b(np.ascontiguousarray(ids[a:b], dtype=np.int64).tobytes(), digest_size=20)
        h.update(np.ascontiguousarray(ranges[mine] - a, dtype=np.int64).tobytes())
        keys.append(h.digest())
        owners.append(mine)
    return keys, owners


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
