"""A trained landmark encoder as a small file over its base: low-rank weight deltas.

Why: a fine-tuned MiniLM is a 90 MB directory, and shipping one in the package
would be a second copy of the base weights. A short fine-tune moves each
weight matrix by a fraction of a percent, mostly along a few directions, so
``trained - base`` is kept as its best rank-``r`` factors (SVD) — a few MB —
and the model directory is rebuilt from the packaged base on first use.
Vectors (1-D weights: biases, LayerNorm) are kept whole; the token
embedding table is left at the base by default (its change is AdamW's weight
decay on 30k rows plus small moves of the rows trained on). How much the
compression costs in recall is measured in docs/encoders.md.

Only safetensors and JSON are read and written: applying a stranger's delta
never runs code. The file records a digest of the base weights it was made
over, so it is never applied to another base.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from hybridctx.errors import ConfigError, InputError

__all__ = ["DELTA_FORMAT", "apply_delta", "base_digest", "write_delta"]

DELTA_FORMAT = "hybridctx-landmark-delta/1"
_TEXT_FILES = ("config.json", "sentence_bert_config.json", "config_sentence_transformers.json",
               "hybridctx_training.json", "README.md", "tokenizer_config.json")


def base_digest(weights: Mapping[str, Any]) -> str:
    """A digest of a model's weights (names, shapes and bytes), to tie a delta to its base."""
    h = hashlib.sha256()
    for key in sorted(weights):
        value = weights[key]
        h.update(key.encode())
        h.update(str(tuple(value.shape)).encode())
        h.update(value.tobytes())
    return h.hexdigest()


def _low_rank(delta: Any, rank: int) -> tuple[Any, Any]:
    import numpy as np

    u, s, vt = np.linalg.svd(delta.astype(np.float32), full_matrices=False)
    r = min(rank, len(s))
    return (u[:, :r] * s[:r]).astype(np.float16), vt[:r].astype(np.float16)


def write_delta(
    model_dir: str | Path,
    out_file: str | Path,
    *,
    rank: int | None = 64,
    base: str | None = None,
    keep_embeddings: bool = False,
) -> Path:
    """Write ``model_dir - base`` as one safetensors file.

    Args:
        model_dir: a model directory (``hybridctx train``'s output, or an interpolation of it).
        out_file: the ``.safetensors`` file to write.
        rank: rank of each matrix's delta; ``None`` keeps every delta whole (float32, exact,
            the embedding table included).
        base: the base model; default the one the model card names.
        keep_embeddings: with a rank, also keep the token-embedding table's delta (whole).
    """
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from hybridctx.embeddings.models import resolve_model
    from hybridctx.embeddings.training.card import read_card
    from hybridctx.embeddings.training.merge import matched_weights, weight_file

    if rank is not None and rank < 1:
        raise ConfigError(f"rank {rank} must be at least 1 (or None for an exact delta)")
    src = Path(model_dir)
    trained = load_file(str(weight_file(src)))
    card = read_card(src) or {}
    base_name = base or card.get("base_model")
    if not base_name:
        raise InputError(f"'{model_dir}' has no model card naming its base: pass base=")
    base_weights = load_file(str(weight_file(resolve_model(str(base_name)).path)))
    pairs = matched_weights(trained, base_weights)
    if len(pairs) != len(trained):
        missing = sorted(set(trained) - set(pairs))[:3]
        raise InputError(f"weights {missing} of '{model_dir}' are not in the base '{base_name}'")
    tensors: dict[str, Any] = {}
    for key, other in pairs.items():
        value = trained[key]
        if not np.issubdtype(value.dtype, np.floating):
            continue
        delta = value.astype(np.float32) - base_weights[other].astype(np.float32)
        if not np.any(delta):
            continue
        if "word_embeddings" in key and not keep_embeddings and rank is not None:
            continue
        if rank is None:
            tensors[f"{other}::full"] = delta
        elif delta.ndim == 2 and rank * sum(delta.shape) < delta.size:
            tensors[f"{other}::u"], tensors[f"{other}::v"] = _low_rank(delta, rank)
        else:
            tensors[f"{other}::full"] = delta.astype(np.float16)
    texts = {name: (src / name).read_text(encoding="utf-8") for name in _TEXT_FILES if (src / name).is_file()}
    metadata = {"format": DELTA_FORMAT, "base_model": str(base_name), "base_digest": base_digest(base_weights),
                "rank": "exact" if rank is None else str(rank), "files": json.dumps(texts, ensure_ascii=False)}
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, out)
    return out


def apply_delta(delta_file: str | Path, out_dir: str | Path) -> Path:
    """Rebuild a model directory from its delta and the base it names (atomically).

    Raises:
        InputError: not a delta file, or the installed base is not the one it was made over.
        ConfigError: ``out_dir`` holds something other than a model directory (it is never deleted).
    """
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from hybridctx.embeddings.models import resolve_model
    from hybridctx.embeddings.training.merge import weight_file

    path, out = Path(delta_file), Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / "model.safetensors").is_file():
        raise ConfigError(f"'{out_dir}' exists and is not a model directory: give a new or empty directory")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError, outside the builtins
        raise InputError(f"'{delta_file}' is not a readable weight delta: {exc}") from None
    if metadata.get("format") != DELTA_FORMAT:
        raise InputError(f"'{delta_file}' is not a {DELTA_FORMAT} file")
    base_dir = Path(resolve_model(metadata["base_model"]).path)
    base_weights = load_file(str(weight_file(base_dir)))
    if base_digest(base_weights) != metadata.get("base_digest"):
        raise InputError(f"'{delta_file}' was made over other weights than the installed "
                         f"'{metadata['base_model']}'; reinstall that base or rebuild the delta")
    merged = {k: v.copy() for k, v in base_weights.items()}
    deltas = load_file(str(path))
    for name, value in deltas.items():
        key, _, part = name.rpartition("::")
        if key not in merged:
            raise InputError(f"'{delta_file}' changes '{key}', which the base has not")
        if part == "full":
            change = value.astype(np.float32)
        elif part == "u":
            change = value.astype(np.float32) @ deltas[f"{key}::v"].astype(np.float32)
        elif part == "v":
            continue
        else:
            raise InputError(f"'{delta_file}' has an entry '{name}' this version cannot read")
        if change.shape != merged[key].shape:
            raise InputError(f"'{delta_file}': the change to '{key}' has shape {change.shape}, "
                             f"the base {merged[key].shape}")
        merged[key] = (merged[key].astype(np.float32) + change).astype(merged[key].dtype)
    staging = out.with_name(out.name + f".staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(base_dir, staging, ignore=shutil.ignore_patterns("*.onnx", "onnx", ".*", "README.md"))
    save_file(merged, str(weight_file(staging)), metadata={"format": "pt"})
    for name, text in json.loads(metadata.get("files", "{}")).items():
        if name in _TEXT_FILES:
            (staging / name).write_text(text, encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    return out
