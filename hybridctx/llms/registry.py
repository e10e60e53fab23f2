"""Finding an LLM backend from what a user typed: ``local``, a URL, or a plug-in's name.

Why a registry: the CLI's ``--llm local|URL`` and third-party backends (entry
point group ``hybridctx.llms``) resolve the same way as the built-ins, loaded
lazily on the first miss so that no plug-in is imported unless asked for.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from hybridctx.errors import ConfigError
from hybridctx.llms.protocol import LLM

__all__ = ["load_llm", "register_llm"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hybridctx.llms"
#: A factory gets the ``--model`` value (or ``None``) and keyword options.
LLMFactory = Callable[..., LLM]
_FACTORIES: dict[str, LLMFactory] = {}


def register_llm(name: str, factory: LLMFactory) -> None:
    """Register ``factory(model, **options) -> LLM`` under ``name``."""
    _FACTORIES[name] = factory


def load_llm(spec: str = "local", *, model: str | None = None, **options: Any) -> LLM:
    """Build the LLM that ``spec`` names.

    Args:
        spec: ``local`` (SmolLM2 on this machine, or the model directory
            ``model`` when given), an ``http(s)://`` base URL of an
            OpenAI-compatible server, or a registered plug-in name.
        model: the model: a name the server knows (required with a URL), or a
            local model directory.
        **options: passed to the backend (``api_key_env=``, ``window=``,
            ``device=``…).

    Raises:
        ConfigError: the spec is unknown, or a URL comes without a model.
    """
    if spec.startswith(("http://", "https://")):
        if not model:
            raise ConfigError(f"an LLM at a URL ('{spec}') needs a model name (model=NAME; --model on the command line)")
        from hybridctx.llms.openai_compat import OpenAICompatibleLLM

        return OpenAICompatibleLLM(spec, model, **options)
    if spec not in _FACTORIES:
        _load_builtins()
    if spec not in _FACTORIES:
        _load_entry_points()
    if spec not in _FACTORIES:
        raise ConfigError(
            f"no LLM backend '{spec}'; use an http(s):// URL or one of: {', '.join(sorted(_FACTORIES))}"
        )
    return _FACTORIES[spec](model, **options)


def _local(model: str | None, **options: Any) -> LLM:
    from hybridctx.llms.local import LocalTransformersLLM, default_local_llm

    if model is None:
        return default_local_llm(**options)
    return LocalTransformersLLM(model, **options)


def _load_builtins() -> None:
    _FACTORIES.setdefault("local", _local)


def _load_entry_points() -> None:
    from hybridctx.config.plugins import load_entry_points

    load_entry_points(ENTRY_POINT_GROUP, _FACTORIES, "LLM")
