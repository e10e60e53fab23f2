"""Model profiles: what the cost router knows about a model, kept as data.

Why: the router's arithmetic is only as good as the numbers behind it, and
those numbers (prices, windows, throughput, GPU memory) change more often than
code. They live in a TOML file shipped as package data
(``hybridctx/routing/profiles_data/models.toml``); users add or correct profiles in
their own TOML file with the same schema instead of editing the library.

A profile either states its throughput (``prefill_tps``, ``decode_tps``) or
gives the architecture and hardware numbers it can be derived from
(``params``, ``peak_flops`` for prefill; ``memory_bandwidth`` and the weights'
size for decode). KV-cache bytes per token and the weights' size are derived
when not given::

    kv_bytes_per_token = 2 (K and V) * layers * kv_heads * head_dim * kv_dtype_bytes
    weights_gib        = params * weight_dtype_bytes / 2**30
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

from hybridctx.errors import ConfigError
from hybridctx.config.settings import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.packing.tokens import TokenCounter

__all__ = ["ModelKind", "ModelProfile", "get_profile", "load_profiles", "profile_counter"]

logger = logging.getLogger(__name__)

ModelKind = Literal["api", "local", "vllm"]
_KINDS = ("api", "local", "vllm")
_GIB = 2**30


@dataclass(frozen=True)
class ModelProfile:
    """One model as the router sees it: window, prices, speed and memory.

    Attributes:
        name: profile name (the TOML table name), e.g. ``kimi``.
        kind: ``api`` (a hosted API priced per token), ``vllm`` (self-hosted
            server on a GPU) or ``local`` (in-process, e.g. on the CPU).
        model: the model id sent to the server or loaded locally.
        window: context window in tokens (prompt and answer together).
        tokenizer: ``cl100k_base``, ``o200k_base``, a ``tokenizer.json`` path
            or a Hugging Face model id whose tokenizer counts exactly.
        fallback_tokenizer: encoding used (and logged) when ``tokenizer`` is
            not available offline; counts are then approximate.
        usd_per_m_input: price per million input tokens.
        usd_per_m_output: price per million output tokens.
        usd_per_gpu_hour: cost of the hardware per hour, charged for the
            seconds a request occupies it (batch size 1: an upper bound).
        api_latency_s: fixed overhead per request (network, queueing).
        prefill_tps: prompt tokens per second, when known directly.
        decode_tps: generated tokens per second, when known directly.
        params: parameter count (active parameters for a mixture of experts).
        layers: transformer layers.
        hidden_size: attention width (heads x head_dim) used by the quadratic
            attention term.
        kv_heads: key/value heads (grouped-query attention).
        head_dim: dimensions per head.
        kv_dtype_bytes: bytes per KV-cache element (2 for BF16/F16, 1 for FP8).
        weight_dtype_bytes: bytes per weight (2 for BF16).
        kv_bytes_per_token: KV-cache bytes per token; derived when omitted.
        weights_gib: size of the weights in GiB; derived when omitted.
        peak_flops: peak dense FLOP/s of the accelerator at the weight dtype.
        flops_efficiency: fraction of ``peak_flops`` reached in prefill.
        memory_bandwidth: accelerator memory bandwidth in bytes per second.
        bandwidth_efficiency: fraction of ``memory_bandwidth`` reached in decode.
        gpu_memory_gib: memory that must hold weights and KV cache; ``None``
            when it is not ours to manage (APIs) or not limiting.
        memory_utilization: share of ``gpu_memory_gib`` the server may use
            (vLLM's ``gpu_memory_utilization``).
        overhead_gib: memory reserved besides weights and KV (activations,
            CUDA graphs).
        usd_per_m_cached_input: price per million input tokens read from the
            provider's prompt cache (a prefix sent before, within the TTL);
            ``None``: the cache is not discounted (or there is none).
        cache_write_multiplier: a cached prefix's first send costs this many
            times ``usd_per_m_input`` (1 where writing is free, as at OpenAI
            and Moonshot; 1.25 for Anthropic's 5-minute cache).
        cache_ttl_s: seconds a prefix stays cached after its last use;
            ``None``: no prompt caching is modelled (the default, so a user
            profile without these keys prices every request cold).
        cache_min_tokens: shortest prefix that is cached at all.
        cache_granularity_tokens: cached prefixes are counted in whole blocks
            of this many tokens (OpenAI 128; vLLM's KV block, 16).
        cache_skips_prefill: the server skips the prefill of a cached prefix
            (vLLM/SGLang automatic prefix caching), so it saves time (and GPU
            dollars) as well as price; ``False``: only the price is discounted.
        effective_context: tokens of context the model really uses (a published
            long-context benchmark such as RULER's effective length, or the
            user's own ``hybridctx eval niah --llm``); the router treats a
            request beyond it as not reliable, however large the window.
            ``None``: the whole window.
        notes: free text: sources, dates, caveats.
    """

    name: str
    kind: ModelKind
    model: str
    window: int
    tokenizer: str = "cl100k_base"
    fallback_tokenizer: str = "cl100k_base"
    usd_per_m_input: float = 0.0
    usd_per_m_output: float = 0.0
    usd_per_gpu_hour: float = 0.0
    api_latency_s: float = 0.0
    prefill_tps: float | None = None
    decode_tps: float | None = None
    params: float | None = None
    layers: int | None = None
    hidden_size: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    kv_dtype_bytes: int = 2
    weight_dtype_bytes: float = 2
    kv_bytes_per_token: int | None = None
    weights_gib: float | None = None
    peak_flops: float | None = None
    flops_efficiency: float = 0.4
    memory_bandwidth: float | None = None
    bandwidth_efficiency: float = 0.7
    gpu_memory_gib: float | None = None
    memory_utilization: float = 0.9
    overhead_gib: float = 0.0
    usd_per_m_cached_input: float | None = None
    cache_write_multiplier: float = 1.0
    cache_ttl_s: float | None = None
    cache_min_tokens: int = 0
    cache_granularity_tokens: int = 1
    cache_skips_prefill: bool = False
    effective_context: int | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        where = f"model profile '{self.name}'"
        if not self.name:
            raise ConfigError("a model profile needs a non-empty name")
        if self.kind not in _KINDS:
            raise ConfigError(f"{where}: kind '{self.kind}' is not one of {', '.join(_KINDS)}")
        if not isinstance(self.window, int) or self.window <= 0:
            raise ConfigError(f"{where}: window {self.window!r} must be a positive integer")
        nonnegative = ("usd_per_m_input", "usd_per_m_output", "usd_per_gpu_hour", "api_latency_s", "overhead_gib")
        for key in nonnegative:
            if getattr(self, key) < 0:
                raise ConfigError(f"{where}: {key} {getattr(self, key)} must be >= 0")
        for key in (
            "prefill_tps", "decode_tps", "params", "layers", "hidden_size", "kv_heads", "head_dim",
            "kv_bytes_per_token", "weights_gib", "peak_flops", "memory_bandwidth", "gpu_memory_gib",
        ):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{where}: {key} {value} must be positive (or left out)")
        for key in ("flops_efficiency", "bandwidth_efficiency", "memory_utilization"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ConfigError(f"{where}: {key} {getattr(self, key)} must be in (0, 1]")
        if self.kv_dtype_bytes <= 0 or self.weight_dtype_bytes <= 0:
            raise ConfigError(f"{where}: kv_dtype_bytes and weight_dtype_bytes must be positive")
        self._check_cache(where)
        self._check_effective_context(where)

        # Derived values are filled in here so that every reader sees one number.
        layers, kv_heads, head_dim = self.layers, self.kv_heads, self.head_dim
        if self.kv_bytes_per_token is None and layers is not None and kv_heads is not None and head_dim is not None:
            kv = 2 * layers * kv_heads * head_dim * self.kv_dtype_bytes
            object.__setattr__(self, "kv_bytes_per_token", int(kv))
        if self.weights_gib is None and self.params is not None:
            object.__setattr__(self, "weights_gib", self.params * self.weight_dtype_bytes / _GIB)

        if self.prefill_tps is None and (self.params is None or self.peak_flops is None):
            raise ConfigError(
                f"{where}: prefill speed is unknown; give prefill_tps, or params and peak_flops "
                "to derive it"
            )
        if self.decode_tps is None and (self.memory_bandwidth is None or self.weights_gib is None):
            raise ConfigError(
                f"{where}: decode speed is unknown; give decode_tps, or memory_bandwidth and "
                "params (or weights_gib) to derive it"
            )
        if self.gpu_memory_gib is not None and self.kv_bytes_per_token is None:
            raise ConfigError(
                f"{where}: gpu_memory_gib is set but the KV-cache size is unknown; give "
                "kv_bytes_per_token, or layers, kv_heads and head_dim"
            )

    def _check_effective_context(self, where: str) -> None:
        value = self.effective_context
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{where}: effective_context {value!r} must be a positive whole number of tokens "
                              "(or left out for the whole window)")

    def _check_cache(self, where: str) -> None:
        for key in ("usd_per_m_cached_input", "cache_ttl_s"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ConfigError(f"{where}: {key} {value} must be >= 0 (or left out for no prompt caching)")
        if isinstance(self.cache_write_multiplier, bool) or self.cache_write_multiplier < 1.0:
            raise ConfigError(f"{where}: cache_write_multiplier {self.cache_write_multiplier} must be at least 1")
        for key in ("cache_min_tokens", "cache_granularity_tokens"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < (key == "cache_granularity_tokens"):
                raise ConfigError(f"{where}: {key} {value!r} must be a whole number of tokens"
                                  f"{', at least 1' if key == 'cache_granularity_tokens' else ', >= 0'}")
        if not isinstance(self.cache_skips_prefill, bool):
            raise ConfigError(f"{where}: cache_skips_prefill {self.cache_skips_prefill!r} must be true or false")

    @property
    def caches_prefix(self) -> bool:
        """Whether a repeated prefix is cheaper or faster: a TTL and a discount or a skipped prefill."""
        return self.cache_ttl_s is not None and (
            self.usd_per_m_cached_input is not None or self.cache_skips_prefill)

    def cached_prefix(self, tokens: int) -> int:
        """Tokens of a ``tokens``-long repeated prefix that the cache serves (0 when it serves none)."""
        if not self.caches_prefix or tokens < max(1, self.cache_min_tokens):
            return 0
        return tokens // self.cache_granularity_tokens * self.cache_granularity_tokens

    @property
    def has_attention_shape(self) -> bool:
        """Whether the quadratic attention term can be computed (params, layers, hidden_size)."""
        return None not in (self.params, self.layers, self.hidden_size)

    @property
    def usable_memory_gib(self) -> float | None:
        """Memory left for the KV cache after weights and overhead, or ``None`` if unlimited."""
        if self.gpu_memory_gib is None:
            return None
        return self.gpu_memory_gib * self.memory_utilization - (self.weights_gib or 0.0) - self.overhead_gib

    @classmethod
    def from_mapping(cls, name: str, values: Mapping[str, Any]) -> ModelProfile:
        """Build a profile from one TOML table, naming the nearest key for an unknown one.

        Raises:
            ConfigError: an unknown key, a missing required key, or a bad value.
        """
        known = {f.name for f in fields(cls)} - {"name"}
        for key in values:
            if key not in known:
                raise ConfigError(f"model profile '{name}': unknown key '{key}'{_did_you_mean(key, known)}")
        missing = [k for k in ("kind", "model", "window") if k not in values]
        if missing:
            raise ConfigError(f"model profile '{name}' is missing {', '.join(missing)}")
        return cls(name=name, **values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (derived values included)."""
        return asdict(self)


def load_profiles(extra: Path | str | None = None) -> dict[str, ModelProfile]:
    """All model profiles: the shipped ones, merged with a user's TOML file.

    The user file has the shipped layout (``[profiles.NAME]`` tables). A table
    whose name is already known overrides only the keys it sets; a new name
    adds a profile, optionally starting from another with ``extends = "NAME"``.

    Args:
        extra: path of the user's TOML file, or ``None`` for the shipped set.

    Returns:
        Profiles by name, in file order (shipped first).

    Raises:
        ConfigError: the file is missing, not valid TOML, or a table is invalid.
    """
    tables = {name: dict(values) for name, values in _shipped_tables().items()}
    if extra is not None:
        path = Path(extra)
        if not path.is_file():
            raise ConfigError(f"profiles file '{path}' does not exist; pass an existing TOML file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"profiles file '{path}' cannot be read as UTF-8 TOML: {exc}") from None
        for name, values in _read_tables(text, str(path)).items():
            values = dict(values)
            base = values.pop("extends", None)
            if base is not None:
                if base not in tables:
                    raise ConfigError(
                        f"profile '{name}' in '{path}' extends unknown profile '{base}'"
                        f"{_did_you_mean(base, tables)}"
                    )
                values = {**tables[base], **values}
            elif name in tables:
                values = {**tables[name], **values}
                logger.debug("profile %r overridden by %s: %s", name, path, sorted(values))
            tables[name] = values
    return {name: ModelProfile.from_mapping(name, values) for name, values in tables.items()}


def get_profile(name: str, extra: Path | str | None = None) -> ModelProfile:
    """One profile by name.

    Args:
        name: a shipped profile name or one defined in ``extra``.
        extra: optional user TOML file (see `load_profiles`).

    Raises:
        ConfigError: no profile has that name; the message names close matches.
    """
    profiles = load_profiles(extra)
    if name not in profiles:
        raise ConfigError(
            f"unknown model profile '{name}'{_did_you_mean(name, profiles)}; "
            f"known profiles: {', '.join(sorted(profiles))}"
        )
    return profiles[name]


def profile_counter(profile: ModelProfile) -> TokenCounter:
    """The token counter for a profile, exact when its tokenizer is available offline.

    ``tokenizer`` is used when it is a shipped tiktoken encoding, an existing
    path, or a Hugging Face id already in the local hub cache; otherwise the
    counts come from ``fallback_tokenizer`` and that is logged at INFO.
    """
    from hybridctx.packing.tokens import TIKTOKEN_ENCODINGS, get_counter

    name = profile.tokenizer
    if name in TIKTOKEN_ENCODINGS or Path(name).exists():
        return get_counter(name)
    cached = _hub_cached_tokenizer(name)
    if cached is not None:
        return get_counter(cached)
    logger.info(
        "tokenizer '%s' of profile '%s' is not available offline; counting with %s instead "
        "(approximate)", name, profile.name, profile.fallback_tokenizer,
    )
    return get_counter(profile.fallback_tokenizer)


def _hub_cached_tokenizer(repo_id: str) -> str | None:
    """Path of ``tokenizer.json`` for a hub id if it is already cached; never downloads."""
    if repo_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "tokenizer.json")
    return found if isinstance(found, str) else None


@lru_cache(maxsize=1)
def _shipped_tables() -> dict[str, dict[str, Any]]:
    text = resources.files("hybridctx.routing.profiles_data").joinpath("models.toml").read_text(encoding="utf-8")
    return _read_tables(text, "the shipped models.toml")


def _read_tables(text: str, source: str) -> dict[str, dict[str, Any]]:
    data = _parse_toml(text, source)
    for key in data:
        if key != "profiles":
            raise ConfigError(
                f"{source}: unknown top-level key '{key}'{_did_you_mean(key, ['profiles'])}; "
                "profiles go in [profiles.NAME] tables"
            )
    tables: dict[str, dict[str, Any]] = data.get("profiles", {})
    for name, values in tables.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: 'profiles.{name}' must be a table, not {type(values).__name__}")
    return tables


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError as exc:  # a core dependency on 3.10; only a broken install lands here
            raise ImportError(
                "reading model profiles on Python 3.10 needs the 'tomli' package; "
                "install it with: pip install tomli"
            ) from exc
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
    return data


def _did_you_mean(word: str, options: Any) -> str:
    return did_you_mean(word, options, n=3, cutoff=0.5)
