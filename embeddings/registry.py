"""Finding an encoder backend by name: built-ins and plug-ins alike.

Why a registry: third-party encoders register under the entry-point group
``hybridctx.encoders`` and are found the same way as the built-ins, loaded
lazily on the first miss so that no plug-in is imported unless asked for.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from hybridctx.embeddings.config import EncoderConfig
from hybridctx.errors import ConfigError, MissingDependencyError

__all__ = ["load_encoder", "register_encoder"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hybridctx.encoders"
_FACTORIES: dict[str, Callable[[EncoderConfig], Any]] = {}


def register_encoder(backend: str, factory: Callable[[EncoderConfig], Any]) -> None:
    """Register a factory that builds an encoder from an ``EncoderConfig``."""
    _FACTORIES[backend] = factory


def load_encoder(config: EncoderConfig | Mapping[str, Any] | None = None, *, backend: str = "transformers") -> Any:
    """Build an encoder.

    Args:
        config: settings (a mapping is validated into an ``EncoderConfig``).
        backend: ``transformers`` (default), ``flag`` (FlagEmbedding), or a
            plug-in's registered name.

    Raises:
        ConfigError: no backend of that name exists.
    """
    cfg = config if isinstance(config, EncoderConfig) else EncoderConfig.from_mapping(dict(config or {}))
    if backend not in _FACTORIES:
        _load_builtins()
    if backend not in _FACTORIES:
        _load_entry_points()
    if backend not in _FACTORIES:
        raise ConfigError(f"no encoder backend '{backend}'; known: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[backend](cfg)


def _load_builtins() -> None:
    from hybridctx.embeddings.windowed import WindowedLandmarkEncoder

    _FACTORIES.setdefault("transformers", lambda cfg: WindowedLandmarkEncoder(cfg))
    _FACTORIES.setdefault("flag", _flag_encoder)


def _load_entry_points() -> None:
    from hybridctx.plugins import load_entry_points

    load_entry_points(ENTRY_POINT_GROUP, _FACTORIES, "encoder")


def _flag_encoder(cfg: EncoderConfig) -> Any:
    """A FlagEmbedding model read through the windowed encoder (its weights and instruction)."""
    try:
        from FlagEmbedding import FlagModel
    except ImportError as exc:
        raise MissingDependencyError("FlagEmbedding", "flag", "the FlagEmbedding encoder backend") from exc
    from hybridctx.embeddings.windowed import WindowedLandmarkEncoder

    flag = FlagModel(cfg.model, use_fp16=bool(cfg.fp16), query_instruction_for_retrieval=cfg.query_instruction)
    instruction = cfg.query_instruction
    if instruction is None:
        instruction = getattr(flag, "query_instruction_for_retrieval", None) or ""
    values = cfg.to_dict()
    values["query_instruction"] = instruction
    return WindowedLandmarkEncoder(EncoderConfig(**values), loaded=(flag.model, flag.tokenizer))
