"""The windowed landmark encoder: chunk-free sentence vectors read in context.

Why: a chunk embedded alone loses what its pronouns point to, and a chunk
boundary cuts evidence in half. Here the tokenizer runs once over the whole
document, the model reads it in long overlapping windows, and every sentence's
vector is taken from the window where it has the most preceding context —
either the mean of its own token states (late chunking) or the state at a
landmark token inserted after it (BGE Landmark Embedding style).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from hybridctx.embeddings.config import EncoderConfig
from hybridctx.embeddings.device import resolve_device
from hybridctx.embeddings.models import ModelSpec, resolve_model
from hybridctx.embeddings.pooling import owned_sentences, pool_window, window_positions, window_sequence
from hybridctx.embeddings.protocol import DocumentInput, Header, document_headers
from hybridctx.embeddings.windows import plan_windows, sentence_token_ranges
from hybridctx.errors import ConfigError

__all__ = ["WindowedLandmarkEncoder"]

logger = logging.getLogger(__name__)

_EXPORT_MAX_PARAMS = 200_000_000  # queries of larger models stay with PyTorch or a shipped export
# Where windows end when the settings do not say (EncoderConfig.window_end): at the last whole sentence,
# 11% fewer tokens read for the same hybrid recall (measured: docs/encoders.md#windows-that-end-at-a-sentence).
DEFAULT_WINDOW_END = "sentence"
# Tokens of recently tokenised documents kept (about 24 bytes each): indexing tokenises a document when
# it segments it and needs the same tokens again when it encodes the document's group (65,536 tokens).
_RECENT_TOKENS = 1 << 19
_ONNX_BATCH_TOKENS = 2048  # tokens per ONNX Runtime batch of windows (8 of 256; measured: see docs/encoders.md)


class WindowedLandmarkEncoder:
    """Landmark vectors from any ``transformers.AutoModel`` encoder.

    Args:
        config: encoder settings; keyword overrides replace its fields.
        loaded: an already-loaded ``(model, tokenizer)`` pair to reuse (e.g. from
            FlagEmbedding); otherwise loaded from ``config.model``.
        overrides: ``EncoderConfig`` fields replacing the config's.
    """

    def __init__(self, config: EncoderConfig | None = None, *, loaded: tuple[Any, Any] | None = None, **overrides: Any) -> None:
        base = (config or EncoderConfig()).to_dict()
        base.update(overrides)
        self.config = EncoderConfig.from_mapping(base)
        self.spec: ModelSpec = resolve_model(self.config.model)
        self._model, self._tokenizer = loaded if loaded is not None else (None, None)
        self._device: str | None = None
        self._backend = None  # tokenizers.Tokenizer, no truncation, no specials
        self._onnx: Any = None  # OnnxQueryEncoder, False when not used, None before deciding
        self._onnx_docs: Any = None  # the same for documents (only ever the exact fp32 export)
        self._last_encoding: tuple[str, Any] | None = None  # (text, tokenizers.Encoding)
        self._recent: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()  # text -> tokens
        self._recent_size = 0
        self._recent_lock = threading.Lock()

    # -- facts -------------------------------------------------------------
    @property
    def window(self) -> int:
        cap = self.spec.max_positions
        wanted = self.config.window or self.spec.trained_length or cap
        return int(min(wanted, cap))

    @property
    def overlap(self) -> int:
        if self.config.overlap is not None:
            return int(self.config.overlap)
        # window/8 (32 tokens at 256): recall equal to or better than window/4's for fewer tokens read
        # (measured: docs/encoders.md#landmark-encoder-variants-measured). An index keeps the overlap it
        # was built with (manifest).
        return self.window // 8

    @property
    def window_end(self) -> str:
        """Where windows end (:attr:`EncoderConfig.window_end`; else where a trained model's
        training windows ended; else the default)."""
        return self.config.window_end or self.spec.trained_window_end or DEFAULT_WINDOW_END

    @property
    def dim(self) -> int:
        self._load()
        return int(self._model.config.hidden_size)

    @property
    def identity(self) -> Mapping[str, Any]:
        cfg = self.config
        return {
            "name": self.spec.name,
            "dim": self.dim,
            "pooling": cfg.pooling,
            "context": cfg.context,
            "mix_weight": cfg.mix_weight if cfg.context == "mix" else None,
            "window": self.window,
            "overlap": self.overlap,
            "query_instruction": self.query_instruction,
            # Only when on: an index built without them has the identity it always had.
            **({"header_prefix_tokens": cfg.header_prefix_tokens} if cfg.header_prefix_tokens else {}),
            **({"window_end": self.window_end} if self.window_end != "length" else {}),
        }

    @property
    def query_instruction(self) -> str:
        if self.config.query_instruction is not None:
            return self.config.query_instruction
        return self.spec.query_instruction

    @property
    def device(self) -> str:
        self._load()
        assert self._device is not None
        return self._device

    def token_offsets(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The document's tokens in one pass: ``(n_tokens, 2) int64`` char offsets and
        ``(n_tokens,) int64`` token ids (no special tokens), both read-only.

        Recent documents' tokens are remembered (up to ``_RECENT_TOKENS``):
        indexing asks for them when it segments a document and again when it
        encodes it, and tokenising is a few percent of indexing
        (measured: docs/encoders.md#indexing-speed-issue-12-deliverable-4).
        """
        with self._recent_lock:
            hit = self._recent.get(text)
            if hit is not None:
                self._recent.move_to_end(text)
                return hit
        self._load()
        enc = self._backend.encode(text, add_special_tokens=False)
        offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
        ids = np.asarray(enc.ids, dtype=np.int64)
        offsets.flags.writeable = False
        ids.flags.writeable = False
        with self._recent_lock:
            if text not in self._recent:
                self._recent[text] = (offsets, ids)
                self._recent_size += len(ids)
            while self._recent_size > _RECENT_TOKENS and len(self._recent) > 1:
                _, (_, old_ids) = self._recent.popitem(last=False)
                self._recent_size -= len(old_ids)
        return offsets, ids

    def readable_ratio(self, text: str) -> float:
        """Share of the non-space characters the tokenizer maps to known tokens.

        Why: an English-only vocabulary turns Chinese into ``[UNK]``; a query
        the model cannot read should not steer retrieval.
        """
        self._load()
        enc = self._encode_once(text)
        total = sum(1 for ch in text if not ch.isspace())
        if total == 0:
            return 1.0
        unk = self._tokenizer.unk_token_id
        unknown = sum(b - a for tid, (a, b) in zip(enc.ids, enc.offsets) if unk is not None and tid == unk)
        return max(0.0, 1.0 - unknown / total)

    # -- loading -----------------------------------------------------------
    def _load(self) -> None:
        if self._backend is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._device = resolve_device(self.config.device)
        if self._model is None:
            try:
                with _quiet_transformers():
                    self._tokenizer = AutoTokenizer.from_pretrained(self.spec.path)
                    self._model = AutoModel.from_pretrained(self.spec.path)
            except OSError as exc:
                raise ConfigError(
                    f"cannot load encoder '{self.spec.name}': {exc}. Give a local model directory, "
                    "or the packaged default 'all-MiniLM-L6-v2'"
                ) from exc
        if not getattr(self._tokenizer, "is_fast", False):
            raise ConfigError(f"encoder '{self.spec.name}' has no fast tokenizer; offsets need tokenizer.json")
        use_fp16 = self.config.fp16 if self.config.fp16 is not None else self._device.startswith("cuda")
        self._model.to(self._device)
        if use_fp16:
            self._model.half()
        self._model.eval()
        backend = self._tokenizer.backend_tokenizer.__class__.from_str(self._tokenizer.backend_tokenizer.to_str())
        backend.no_truncation()
        backend.no_padding()
        self._backend = backend
        torch.set_grad_enabled(False)
        self._prefix, self._suffix = self._special_ids()
        self._landmark_id = self._landmark_token_id()

    def _special_ids(self) -> tuple[list[int], list[int]]:
        # Ask the tokenizer's own post-processor what it wraps a sequence in.
        probe = "landmark"
        bare = self._backend.encode(probe, add_special_tokens=False).ids
        full = self._backend.encode(probe, add_special_tokens=True).ids
        for cut in range(len(full) - len(bare) + 1):
            if full[cut : cut + len(bare)] == bare:
                return list(full[:cut]), list(full[cut + len(bare) :])
        return [], []

    def _landmark_token_id(self) -> int:
        tok = self._tokenizer
        name = self.config.landmark_token
        if name is not None:
            ids = tok.convert_tokens_to_ids([name])
            if not ids or ids[0] is None or ids[0] == tok.unk_token_id:
                raise ConfigError(f"landmark token '{name}' is not in the vocabulary of '{self.spec.name}'")
            return int(ids[0])
        for candidate in (tok.eos_token_id, tok.sep_token_id, tok.pad_token_id):
            if candidate is not None:
                return int(candidate)
        raise ConfigError(f"'{self.spec.name}' has no EOS or SEP token; set landmark_token")

    # -- queries -----------------------------------------------------------
    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Encode queries alone (with the model's query instruction), mean pooled.

        Returns:
            ``(n, dim) float32``, L2-normalised.
        """
        self._load()
        prefix = self.query_instruction
        seqs = [self._encode_once(prefix + q).ids for q in queries]
        limit = self.window - len(self._prefix) - len(self._suffix)
        seqs = [self._prefix + s[:limit] + self._suffix for s in seqs]
        if self.config.pooling == "landmark":
            seqs = [s[: len(s) - len(self._suffix)] + [self._landmark_id] + self._suffix for s in seqs]
        onnx = self._onnx_queries()
        if onnx is not None:
            return _normalise(np.stack([self._pool_one(onnx.hidden(s)) for s in seqs]))
        with _single_thread(self._device):
            pooled = self._run_isolated(seqs, landmark=self.config.pooling == "landmark")
        return _normalise(pooled)

    def forget_tokens(self) -> None:
        """Drop the remembered tokens of recent documents (a benchmark that times tokenising)."""
        with self._recent_lock:
            self._recent.clear()
            self._recent_size = 0

    def _encode_once(self, text: str) -> Any:
        """The tokenizer's encoding of ``text``, remembered for the next call: retrieval
        asks for a query's tokens twice (is it readable, then its vector)."""
        last = self._last_encoding
        if last is not None and last[0] == text:
            return last[1]
        enc = self._backend.encode(text, add_special_tokens=False)
        self._last_encoding = (text, enc)
        return enc

    def _pool_one(self, hidden: np.ndarray) -> np.ndarray:
        """Pool one sequence's ``(T, dim)`` states as :meth:`_run_isolated` does."""
        if self.config.pooling == "landmark":
            return hidden[len(hidden) - 1 - len(self._suffix)]
        if self.spec.sentence_pooling == "cls":
            return hidden[0]
        return hidden.mean(axis=0)

    def _onnx_queries(self) -> Any:
        """The ONNX query encoder when ``query_runtime`` asks for one and it can run here."""
        if self._onnx is not None:
            return self._onnx or None
        runtime = self.config.query_runtime
        self._onnx = False
        if runtime == "torch" or (runtime == "auto" and not str(self._device).startswith("cpu")):
            return None
        from hybridctx.embeddings.onnx_query import OnnxQueryEncoder, known_onnx_export

        # An export of the loaded weights (exact) first, then one that ships or sits beside the model.
        path = self.config.query_onnx or self._own_export() or known_onnx_export(
            self.spec.name, self.spec.path if self.spec.is_local else None)
        if path is None:
            if runtime == "onnx":
                raise ConfigError(
                    f"query_runtime='onnx' but no ONNX export of '{self.spec.name}' was found; "
                    "set query_onnx to a .onnx file"
                )
            return None
        if runtime == "auto" and importlib.util.find_spec("onnxruntime") is None:
            logger.info("onnxruntime is not installed; encoding queries with PyTorch")
            return None
        self._onnx = OnnxQueryEncoder(path, self.dim)
        return self._onnx

    def _own_export(self) -> Any:
        """The cached fp32 ONNX export of the loaded model, when it is small enough to
        be worth exporting (encoders, not LLM-sized decoders) and one can be made."""
        from hybridctx.embeddings.onnx_export import fp32_export

        model = self._model
        if model is None or sum(p.numel() for p in model.parameters()) > _EXPORT_MAX_PARAMS:
            return None
        return fp32_export(model, self.spec.name)

    # -- documents ---------------------------------------------------------
    def encode_documents(
        self, documents: Sequence[DocumentInput], *, show_progress: bool | None = None
    ) -> list[np.ndarray]:
        """Encode every sentence of every document in its context.

        Args:
            documents: ``(text, sentences)`` pairs; sentences are char ranges. With
                ``header_prefix_tokens`` on, a :class:`~hybridctx.embeddings.protocol.HeadedDocument`
                also gives its headings (a plain pair is read without header prefixes).
            show_progress: tqdm bar (``None``: only on a terminal).

        Returns:
            Per document, ``(n_sentences, dim) float32``, L2-normalised; all
            zeros for a document the model cannot read (see ``unreadable_docs``).
        """
        self._load()
        prepared = [self._prepare(doc[0], doc[1], document_headers(doc)) for doc in documents]
        unreadable = [self._mostly_unknown(p["ids"]) for p in prepared]
        for p, skip in zip(prepared, unreadable):
            if skip:  # encode nothing: its windows would be [UNK] noise
                p["plan"] = replace(p["plan"], windows=p["plan"].windows[:0], assignment=p["plan"].assignment * 0 - 1)
        if any(unreadable):
            logger.info("%d of %d documents are mostly unknown tokens for %s; they get no dense vectors "
                        "(lexical search still finds them)", sum(unreadable), len(prepared), self.spec.name)
        total_windows = sum(len(p["plan"].windows) for p in prepared)
        out: list[np.ndarray] = []
        contextual = self.config.context in ("window", "mix")
        isolated = self.config.context in ("isolated", "mix")
        ctx_vecs = self._encode_windows(prepared, show_progress, total_windows) if contextual else None
        iso_vecs = self._encode_isolated(prepared) if isolated else None
        w = self.config.mix_weight
        for i in range(len(prepared)):
            if unreadable[i]:
                out.append(np.zeros((len(prepared[i]["ranges"]), self.dim), np.float32))
                continue
            if contextual and isolated:
                vec = w * _normalise(iso_vecs[i]) + (1 - w) * _normalise(ctx_vecs[i])
            else:
                vec = ctx_vecs[i] if contextual else iso_vecs[i]
            out.append(_normalise(vec).astype(np.float32))
        return out

    def _mostly_unknown(self, ids: np.ndarray) -> bool:
        unk = self._tokenizer.unk_token_id
        if unk is None or len(ids) == 0:
            return False
        return float(np.mean(ids == unk)) > self.config.unreadable_ratio

    def _prepare(self, text: str, sentences: Sequence[tuple[int, int]], headers: Sequence[Header] = ()) -> dict[str, Any]:
        offsets, ids = self.token_offsets(text)
        sent = np.asarray(sentences, dtype=np.int64).reshape(-1, 2)
        ranges = sentence_token_ranges(offsets, sent) if len(sent) else np.zeros((0, 2), np.int64)
        plain_ends = ranges[:, 1].copy()  # before landmark tokens shift them
        landmark = self.config.pooling == "landmark"
        if landmark and len(ranges):
            # A landmark token after each sentence; sentence k's tokens shift by k.
            shift = np.arange(len(ranges), dtype=np.int64)
            ids = np.insert(ids, ranges[:, 1], self._landmark_id)
            ranges = ranges + shift[:, None]
            ranges[:, 1] += 1  # the sentence now ends with its landmark
        n_header = self.config.header_prefix_tokens if headers and len(ranges) else 0
        length = self.window - len(self._prefix) - len(self._suffix) - n_header
        overlap = min(self.overlap, length - 1)
        plan = plan_windows(ranges, len(ids), length, overlap, end_at_sentence=self.window_end == "sentence")
        prepared = {"ids": ids, "ranges": ranges, "plan": plan}
        if n_header:
            # Where each heading starts, in the (landmark-shifted) token sequence the windows cut.
            starts = np.asarray([h[0] for h in headers], dtype=np.int64)
            tokens = np.searchsorted(offsets[:, 1], starts, side="right") if len(offsets) else starts * 0
            if landmark:
                tokens = tokens + np.searchsorted(plain_ends, tokens, side="right")
            prepared["headers"] = self._header_prefixes(plan, sent, headers, starts, tokens, n_header)
        return prepared

    def _header_prefixes(self, plan: Any, sentences: np.ndarray, headers: Sequence[Header], starts: np.ndarray,
                         tokens: np.ndarray, limit: int) -> list[list[int]]:
        """Per window, the header-path tokens read before it: the path of the heading its
        first landmark lies under when that heading starts before the window, else none."""
        order = np.argsort(starts, kind="stable")
        starts, tokens = starts[order], tokens[order]
        paths: dict[int, list[int]] = {}
        out: list[list[int]] = []
        for w, sents in enumerate(owned_sentences(plan.assignment, len(plan.windows))):
            h = int(np.searchsorted(starts, sentences[sents[0], 0], side="right")) - 1 if len(sents) else -1
            if h < 0 or tokens[h] >= plan.windows[w][0]:
                out.append([])  # no heading above, or the window reads it itself
                continue
            if h not in paths:
                paths[h] = self._path_ids(headers[int(order[h])][1], limit)
            out.append(paths[h])
        return out

    def _path_ids(self, path: Sequence[str], limit: int) -> list[int]:
        """A header path's tokens, each label followed by a separator (``›``), at most
        ``limit``: the innermost labels are kept whole first, outer ones while they fit,
        and an innermost label longer than the limit is cut."""
        sep = self._backend.encode("›", add_special_tokens=False).ids
        if len(sep) != 1 or sep[0] == self._tokenizer.unk_token_id:
            sep = self._backend.encode(":", add_special_tokens=False).ids[:1]
        out: list[int] = []
        for label in reversed(path):
            part = self._backend.encode(label, add_special_tokens=False).ids
            if not part:
                continue
            if len(out) + len(part) + len(sep) > limit:
                if not out:
                    out = part[: limit - len(sep)] + sep
                break
            out = part + sep + out
        return out

    def _encode_windows(self, prepared: list[dict[str, Any]], show_progress: bool | None, total: int) -> list[np.ndarray]:
        from tqdm.auto import tqdm

        dim = self.dim
        results = [np.zeros((len(p["ranges"]), dim), dtype=np.float32) for p in prepared]
        jobs = [(d, w) for d, p in enumerate(prepared) for w in range(len(p["plan"].windows))]
        n_special = len(self._prefix) + len(self._suffix)
        heads = [p.get("headers") for p in prepared]  # header-path tokens per window (header_prefix_tokens)
        lengths = [int(np.diff(prepared[d]["plan"].windows[w])[0]) + n_special + len(_head(heads[d], w))
                   for d, w in jobs]
        onnx = self._onnx_documents() if jobs else None
        landmark = self.config.pooling == "landmark"
        n_pre = len(self._prefix)
        # Which sentences each window owns.
        owners: dict[tuple[int, int], np.ndarray] = {}
        for d, p in enumerate(prepared):
            for w, sents in enumerate(owned_sentences(p["plan"].assignment, len(p["plan"].windows))):
                owners[(d, w)] = sents
        bar = tqdm(total=total, desc="encoding windows", unit="win", disable=_disable(show_progress))
        for rows in _length_batches(lengths, self._batch_tokens(onnx)):
            batch = [jobs[i] for i in rows]
            seqs = []
            for d, w in batch:
                seqs.append(window_sequence(prepared[d]["ids"], prepared[d]["plan"].windows[w],
                                            self._prefix + _head(heads[d], w), self._suffix))
            hidden = self._forward(seqs, onnx)  # (B, T, dim) float32 torch on device
            # ONNX Runtime's states are pooled as the numpy array they are (zero-copy; see pool_window).
            states = hidden.numpy() if onnx is not None else hidden
            for row, (d, w) in enumerate(batch):
                sents = owners[(d, w)]
                if len(sents) == 0:
                    continue
                ts, te = window_positions(prepared[d]["plan"].windows[w], prepared[d]["ranges"][sents],
                                          n_pre + len(_head(heads[d], w)))
                vec = pool_window(states[row], ts, te, landmark=landmark)
                results[d][sents] = vec if onnx is not None else vec.float().cpu().numpy()
            bar.update(len(batch))
        bar.close()
        return results

    def _encode_isolated(self, prepared: list[dict[str, Any]]) -> list[np.ndarray]:
        limit = self.window - len(self._prefix) - len(self._suffix)
        seqs, where = [], []
        for d, p in enumerate(prepared):
            if len(p["plan"].windows) == 0 and len(p["ranges"]):
                continue  # an unreadable document
            for k, (ts, te) in enumerate(p["ranges"]):
                body = p["ids"][ts:te].tolist()[:limit]
                seqs.append(self._prefix + body + self._suffix)
                where.append((d, k))
        pooled = self._run_isolated(seqs, landmark=self.config.pooling == "landmark",
                                    onnx=self._onnx_documents() if seqs else None)
        results = [np.zeros((len(p["ranges"]), pooled.shape[1] if len(pooled) else self.dim), np.float32) for p in prepared]
        for (d, k), vec in zip(where, pooled):
            results[d][k] = vec
        return results

    def _run_isolated(self, seqs: list[list[int]], *, landmark: bool, onnx: Any = None) -> np.ndarray:
        """Mean-pool (or landmark-pool) short sequences, batched by length."""
        import torch

        if not seqs:
            return np.zeros((0, self.dim), np.float32)
        out = np.zeros((len(seqs), self.dim), np.float32)
        for idx in _length_batches([len(s) for s in seqs], self._batch_tokens(onnx)):
            batch = [seqs[i] for i in idx]
            hidden = self._forward(batch, onnx)
            lengths = torch.as_tensor([len(s) for s in batch], device=hidden.device)
            if landmark:
                pos = lengths - 1 - len(self._suffix)
                vec = hidden[torch.arange(len(batch), device=hidden.device), pos]
            elif self.spec.sentence_pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]).to(hidden.dtype)
                vec = (hidden * mask.unsqueeze(2)).sum(1) / lengths.unsqueeze(1).to(hidden.dtype)
            out[idx] = vec.float().cpu().numpy()
        return out

    def _forward(self, seqs: list[list[int]], onnx: Any = None):  # -> torch.Tensor (B, T, dim)
        """Token states of right-padded ``seqs``: by ``onnx`` (an ``OnnxQueryEncoder``
        over the exact export) when given, else by the PyTorch model."""
        import torch

        ids, mask = _padded(seqs, self._tokenizer.pad_token_id or 0)
        if onnx is not None:
            return torch.from_numpy(onnx.states(ids, mask))
        with torch.inference_mode():
            out = self._model(input_ids=torch.from_numpy(ids).to(self._device),
                              attention_mask=torch.from_numpy(mask).to(self._device))
        return out.last_hidden_state

    def _batch_tokens(self, onnx: Any) -> int:
        """Tokens per forward batch: ``batch_tokens``, capped for ONNX Runtime on a CPU."""
        return min(self.config.batch_tokens, _ONNX_BATCH_TOKENS) if onnx is not None else self.config.batch_tokens

    def _onnx_documents(self) -> Any:
        """The ONNX session that encodes documents, or ``None`` for PyTorch (decided once).

        Only the fp32 export of the loaded weights serves documents (never a
        quantised or user-given file): landmarks must be the vectors PyTorch
        would give. It shares the query session when that is the same file.
        """
        if self._onnx_docs is not None:
            return self._onnx_docs or None
        self._onnx_docs = False
        runtime = self.config.document_runtime
        if runtime == "torch":
            return None
        reason = self._onnx_documents_blocker()
        path = None if reason else self._own_export()
        if reason is None and path is None:
            reason = (f"no fp32 ONNX export of the loaded weights could be made (models over {_EXPORT_MAX_PARAMS:,} "
                      "parameters are not exported; see any warning above)")
        if reason is not None:
            if runtime == "onnx":
                raise ConfigError(f"document_runtime='onnx' but {reason}; use document_runtime='torch'")
            log = logger.debug if reason.startswith("the model runs on") else logger.info
            log("encoding documents with PyTorch: %s", reason)
            return None
        from hybridctx.embeddings.onnx_query import OnnxQueryEncoder

        shared = self._onnx if self._onnx and Path(self._onnx.path) == Path(path) else None
        self._onnx_docs = shared or OnnxQueryEncoder(path, self.dim)
        logger.info("encoding documents with ONNX Runtime (%s, the fp32 export of the loaded weights)", Path(path).name)
        return self._onnx_docs

    def _onnx_documents_blocker(self) -> str | None:
        """Why documents cannot go through ONNX Runtime here, or ``None``."""
        if not str(self._device).startswith("cpu"):
            return f"the model runs on {self._device}"
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install 'hybridctx[cpu]')"
        if importlib.util.find_spec("onnx") is None:
            return "the onnx package, which exports the model, is not installed (pip install 'hybridctx[cpu]')"
        import torch

        if next(self._model.parameters()).dtype != torch.float32:
            return "the model is not in float32"
        return None


@contextmanager
def _single_thread(device: str | None) -> Iterator[None]:
    """One CPU thread for a tiny forward pass, then the previous setting.

    Why: a query is a few dozen tokens; splitting it over threads gains
    nothing, and when the other cores are busy the threads' barriers make a
    short encode many times slower (measured: docs/benchmarks.md#query-latency).
    """
    import torch

    if device is None or not device.startswith("cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading bar (our own bars report progress), then restore it."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _length_batches(lengths: Sequence[int], batch_tokens: int, *, slack: float = 0.125) -> list[list[int]]:
    """Indices of sequences grouped into batches of similar length, longest first.

    A batch holds at most ``batch_tokens`` tokens counting its padding, and no
    sequence shorter than ``1 - slack`` of its longest, so padding is under
    ``slack`` of what a batch computes (sorting alone would pad a document's
    short last window up to the full windows of others).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 1
    for i in order:
        if current and ((len(current) + 1) * longest > batch_tokens or lengths[i] < longest * (1 - slack)):
            batches.append(current)
            current = []
        if not current:
            longest = max(int(lengths[i]), 1)
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _padded(seqs: Sequence[Sequence[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, attention_mask)``, both ``(len(seqs), longest) int64``, padded on the right."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    ids = np.full((len(seqs), int(lengths.max())), pad, dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    mask = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.int64)
    return ids, mask


def _head(headers: list[list[int]] | None, w: int) -> list[int]:
    """Window ``w``'s header-path tokens (none when the document has no header prefixes)."""
    return headers[w] if headers else []


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _disable(show_progress: bool | None) -> bool | None:
    return None if show_progress is None else not show_progress
