"""Settings of the windowed landmark encoder, validated once.

Why: the encoder identity written into an index comes from these settings, so
they are a frozen, checked value rather than loose keyword arguments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

from hybridctx.errors import ConfigError

__all__ = ["ContextMode", "EncoderConfig", "Pooling", "QueryRuntime", "WindowEnd"]

_NUMBER = (int, float)
_NONE = type(None)
# The type each setting must have. An encoder identity read from an index (a stranger's file) comes
# through here, and a wrong type ("landmark_token": []) must fail as a setting, not deep in a tokenizer.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,), "pooling": (str,), "context": (str,), "mix_weight": _NUMBER,
    "window": (int, _NONE), "overlap": (int, _NONE), "window_end": (str, _NONE), "batch_tokens": (int,),
    "device": (str,), "fp16": (bool, _NONE), "landmark_token": (str, _NONE), "query_instruction": (str, _NONE),
    "unreadable_ratio": _NUMBER, "query_runtime": (str,), "query_onnx": (str, _NONE), "document_runtime": (str,),
    "header_prefix_tokens": (int,),
}

Pooling = Literal["mean", "landmark"]
ContextMode = Literal["window", "isolated", "mix"]
QueryRuntime = Literal["auto", "torch", "onnx"]
WindowEnd = Literal["sentence", "length"]


@dataclass(frozen=True)
class EncoderConfig:
    """How landmark vectors are made.

    Attributes:
        model: packaged default name, a local model directory or a hub id.
        pooling: ``mean`` of the sentence's own token states inside the window
            (late chunking), or ``landmark``: the state at a landmark token
            inserted after each sentence (for models trained that way).
        context: ``window`` (contextual only), ``isolated`` (each sentence
            alone, no context) or ``mix`` (a weighted sum of both).
        mix_weight: weight of the isolated vector in ``mix`` mode.
        window: window length in tokens including special tokens; ``None``
            means the model's trained length (capped by its maximum).
        overlap: preceding-context tokens a window keeps; ``None`` = window/8
            (32 for MiniLM's 256; it was window/4 before; an index keeps the
            overlap its manifest records).
        window_end: where a window ends: ``length`` (at the window length,
            so the sentence cut there is right-hand context, then read whole
            by the next window) or ``sentence`` (at the end of the last
            sentence the window reads; fewer tokens read for the same
            landmarks). ``None`` = the default; an index keeps the one its
            manifest records (an index without the entry: ``length``).
        batch_tokens: tokens per forward batch.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        fp16: half precision on CUDA (``None`` = when on CUDA).
        landmark_token: token inserted for ``landmark`` pooling (``None`` = the
            tokenizer's EOS, else SEP).
        query_instruction: prefix for queries (``None`` = the model's own).
        unreadable_ratio: a document with more than this share of unknown
            tokens (e.g. Chinese for an English vocabulary) gets zero vectors
            instead of encoding noise; lexical search still covers it.
        query_runtime: what encodes queries on the CPU: ``onnx`` (ONNX
            Runtime on an export of the same model; several times faster for
            one short input), ``torch``, or ``auto`` (``onnx`` when an export
            and onnxruntime are present, else ``torch``). On a GPU queries are
            encoded by PyTorch.
        query_onnx: path of the ONNX export for ``onnx`` (``None``: an fp32
            export of the loaded weights, made once and cached, when the
            ``onnx`` package is present; else the packaged export of the
            default model, or ``model.onnx`` / ``onnx/model.onnx`` in a local
            model directory).
        document_runtime: what encodes documents on the CPU: ``onnx`` (ONNX
            Runtime on the fp32 export of the loaded weights, the file that
            serves queries; vectors equal PyTorch's to float rounding, never a
            quantised export), ``torch``, or ``auto`` (``onnx`` when the ``onnx``
            and ``onnxruntime`` packages are present and the export can be
            made, else ``torch``, logged with the reason). On a GPU ``auto`` is
            ``torch``.
        header_prefix_tokens: ``0`` (off), or the most tokens of a header path
            read before a window: a window whose first landmark lies under a
            heading that starts before the window gets that heading's path
            (title › section, or the session header) after its first special
            token, so the landmark is read knowing where it stands; the
            landmark's vector still pools only its own tokens. Windows of a
            document with headings are planned this many tokens shorter.
            Needs the headings in the input (:class:`~hybridctx.embeddings.protocol.HeadedDocument`,
            which indexing passes); queries are unchanged. Opt-in
            (measured: docs/benchmarks.md#structure-and-query-hints-issue-13).
    """

    model: str = "all-MiniLM-L6-v2"
    pooling: Pooling = "mean"
    context: ContextMode = "window"
    mix_weight: float = 0.5
    window: int | None = None
    overlap: int | None = None
    window_end: WindowEnd | None = None
    batch_tokens: int = 8192
    device: str = "auto"
    fp16: bool | None = None
    landmark_token: str | None = None
    query_instruction: str | None = None
    unreadable_ratio: float = 0.5
    query_runtime: QueryRuntime = "auto"
    query_onnx: str | None = None
    document_runtime: QueryRuntime = "auto"
    header_prefix_tokens: int = 0

    def __post_init__(self) -> None:
        for name, types in _FIELD_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise ConfigError(f"encoder setting {name} = {value!r} has the wrong type")
        if self.pooling not in ("mean", "landmark"):
            raise ConfigError(f"pooling '{self.pooling}' is not one of mean, landmark")
        if self.context not in ("window", "isolated", "mix"):
            raise ConfigError(f"context '{self.context}' is not one of window, isolated, mix")
        if not 0.0 <= self.mix_weight <= 1.0:
            raise ConfigError(f"mix_weight {self.mix_weight} must be between 0 and 1")
        if self.window is not None and self.window < 16:
            raise ConfigError(f"window {self.window} is too small; use at least 16 tokens")
        if self.overlap is not None and self.overlap < 0:
            raise ConfigError(f"overlap {self.overlap} must be >= 0")
        if self.window_end not in (None, "sentence", "length"):
            raise ConfigError(f"window_end '{self.window_end}' is not one of sentence, length")
        if self.query_runtime not in ("auto", "torch", "onnx"):
            raise ConfigError(f"query_runtime '{self.query_runtime}' is not one of auto, torch, onnx")
        if self.document_runtime not in ("auto", "torch", "onnx"):
            raise ConfigError(f"document_runtime '{self.document_runtime}' is not one of auto, torch, onnx")
        if isinstance(self.header_prefix_tokens, bool) or not isinstance(self.header_prefix_tokens, int) \
                or not 0 <= self.header_prefix_tokens <= 64:
            raise ConfigError(f"header_prefix_tokens {self.header_prefix_tokens!r} must be an integer from 0 to 64")
        if self.batch_tokens < 64:
            raise ConfigError(f"batch_tokens {self.batch_tokens} must be at least 64")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "EncoderConfig":
        """Build from a dict, naming the nearest valid key for an unknown one."""
        from hybridctx.config.settings import reject_unknown_keys

        reject_unknown_keys(values, cls, "encoder setting")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
