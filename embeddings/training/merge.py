"""Interpolating a trained landmark encoder back towards its base model (WiSE-FT).

Why: a fine-tune on a few hundred examples moves every weight, and what it
gains on the kinds of document it saw (contract clauses, dialogues) it can
lose on the kinds it did not (short single-paragraph documents, where the
trained model fell behind the packaged MiniLM). Averaging the weights of the
fine-tuned and the base model — ``base + w · (trained − base)`` — is the
robust fine-tuning recipe of Wortsman et al. 2022 (WiSE-FT): the same
architecture, no training, one number ``w`` that trades what was learnt
against what the base already knew. It is measured in docs/encoders.md.

Only safetensors are read and written, so merging a stranger's model
directory never runs its code.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from hybridctx.errors import ConfigError, InputError

__all__ = ["interpolate_with_base", "matched_weights", "weight_file"]

_WEIGHTS = "model.safetensors"


def weight_file(model_dir: str | Path) -> Path:
    """The safetensors weights of a model directory (sentence-transformers layouts included)."""
    root = Path(model_dir)
    for candidate in (root / _WEIGHTS, *sorted(root.glob(f"*/{_WEIGHTS}"))):
        if candidate.is_file():
            return candidate
    raise InputError(f"'{model_dir}' has no {_WEIGHTS}: give a model directory written by `hybridctx train`")


def _stem(key: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def matched_weights(trained: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, str]:
    """Trained key -> base key, tolerating a model prefix (``bert.``) on either side."""
    prefixes = ("bert.", "model.", "encoder.model.")
    by_stem = {_stem(k, prefixes): k for k in base}
    pairs: dict[str, str] = {}
    for key, value in trained.items():
        other = by_stem.get(_stem(key, prefixes))
        if other is None:
            continue
        if tuple(base[other].shape) != tuple(value.shape):
            raise InputError(f"weight '{key}' has shape {tuple(value.shape)} in the trained model and "
                             f"{tuple(base[other].shape)} in the base: not the same architecture")
        pairs[key] = other
    return pairs


def interpolate_with_base(
    model_dir: str | Path,
    weight: float,
    out_dir: str | Path,
    *,
    base: str | None = None,
) -> Path:
    """Write ``base + weight · (trained − base)`` as a new model directory.

    Args:
        model_dir: a model directory written by ``hybridctx train``.
        weight: 0 gives the base model back, 1 the trained one.
        out_dir: the directory to write (the trained directory's other files are copied).
        base: the base model; default the one its model card names.

    Raises:
        InputError: no weights, or the two models do not have the same weights.
        ConfigError: ``weight`` outside [0, 1], or ``out_dir`` is ``model_dir``.
    """
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from hybridctx.embeddings.models import resolve_model
    from hybridctx.embeddings.training.card import CARD_JSON, read_card

    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"interpolation weight {weight} must be between 0 (the base) and 1 (the trained model)")
    src, out = Path(model_dir), Path(out_dir)
    if src.resolve() == out.resolve():
        raise ConfigError("write the interpolated model to a new directory, not over the trained one")
    if out.exists() and any(out.iterdir()) and not (out / _WEIGHTS).is_file():
        raise ConfigError(f"'{out_dir}' exists and is not a model directory: give a new or empty directory")
    weights_in = weight_file(src)
    card = read_card(src) or {}
    base_name = base or card.get("base_model")
    if not base_name:
        raise InputError(f"'{model_dir}' has no model card naming its base: pass base=")
    trained = load_file(str(weights_in))
    base_weights = load_file(str(weight_file(resolve_model(str(base_name)).path)))
    pairs = matched_weights(trained, base_weights)
    if len(pairs) < len(trained) // 2:
        raise InputError(f"only {len(pairs)} of {len(trained)} weights of '{model_dir}' are in the base "
                         f"'{base_name}': not the same architecture")
    merged: dict[str, Any] = {}
    for key, value in trained.items():
        other = pairs.get(key)
        if other is None or not np.issubdtype(value.dtype, np.floating):
            merged[key] = value
            continue
        start = base_weights[other].astype(np.float32)
        merged[key] = (start + weight * (value.astype(np.float32) - start)).astype(value.dtype)
    staging = out.with_name(out.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging, ignore=shutil.ignore_patterns("checkpoint", "*.onnx", "onnx", ".*"))
    target = weight_file(staging)
    save_file(merged, str(target) + ".tmp", metadata={"format": "pt"})
    os.replace(str(target) + ".tmp", target)
    if card:
        card = dict(card, interpolation={"weight": weight, "trained": str(src), "base": str(base_name),
                                         "method": "WiSE-FT: base + weight * (trained - base)"})
        (staging / CARD_JSON).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        readme = staging / "README.md"
        if readme.is_file():
            readme.write_text(readme.read_text(encoding="utf-8") + (
                f"\n## Interpolated\n\nThese weights are `base + {weight} * (trained - base)` (WiSE-FT), "
                f"with the base `{base_name}` and the trained model above.\n"), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    return out
