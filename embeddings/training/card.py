"""The model card of a trained landmark encoder: what it is, what made it, how well it did.

Why: a model directory travels without its training run; the card (README.md
for people, ``hybridctx_training.json`` for programs) keeps the base model,
the data and their licences, every hyper-parameter, the validation history
and the command, so a number can be traced and the run reproduced.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["CARD_JSON", "read_card", "write_card"]

CARD_JSON = "hybridctx_training.json"


def write_card(
    out_dir: str | Path,
    *,
    config: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    best_epoch: int,
    stopped: str,
    seconds: float,
    tokens_per_second: float,
    examples: int,
    window: int,
    overlap: int,
    info: Mapping[str, Any],
    window_end: str = "length",
) -> Path:
    """Write ``README.md`` and ``hybridctx_training.json`` into ``out_dir`` (atomically each)."""
    out = Path(out_dir)
    payload = {
        "base_model": config.get("base"),
        "window": window,
        "overlap": overlap,
        "window_end": window_end,
        "config": dict(config),
        "data": list(info.get("data", [])),
        "command": info.get("command"),
        "examples": examples,
        "best_epoch": best_epoch,
        "stopped": stopped,
        "training_seconds": round(seconds, 1),
        "tokens_per_second": round(tokens_per_second, 1),
        "history": [_clean(h) for h in history],
    }
    _atomic(out / CARD_JSON, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    _atomic(out / "README.md", _markdown(payload))
    return out / "README.md"


def read_card(model_dir: str | Path) -> dict[str, Any] | None:
    """The training record of a model directory, or ``None`` when it has none."""
    path = Path(model_dir) / CARD_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _markdown(p: Mapping[str, Any]) -> str:
    lines = [
        "# Landmark encoder trained with hybridctx",
        "",
        f"Fine-tuned from `{p['base_model']}` by `hybridctx train` to make in-context landmark vectors: each "
        f"sentence is read inside windows of {p['window']} tokens (overlap {p['overlap']}, ending at "
        f"{'the last whole sentence' if p.get('window_end') == 'sentence' else 'the window length'}) and pooled from its "
        "own token states, as `hybridctx index` reads it. Load it with `--encoder DIR`.",
        "",
        "## Data",
        "",
    ]
    for d in p["data"] or [{"source": "(not recorded)"}]:
        lines.append(f"- {d.get('source')}: {d.get('kind', '')}, {d.get('examples', '?')} examples, "
                     f"licence {d.get('licence', 'not stated')}")
    lines += ["", "## Hyper-parameters", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in p["config"].items()]
    lines += ["", f"Examples: {p['examples']}. Training time {p['training_seconds']} s at "
              f"{p['tokens_per_second']} training tokens/s (forward + backward, over the whole run with its "
              f"validations). Stopped: {p['stopped']}; "
              f"kept epoch {p['best_epoch']}.", "", "## Validation (document-disjoint held-out split)", ""]
    hist = p["history"]
    keys = [k for k in (hist[0] if hist else {}) if k not in ("epoch", "step")]
    lines += ["| epoch | step | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 2)]
    for h in hist:
        lines.append(f"| {h.get('epoch')} | {h.get('step')} | "
                     + " | ".join(_fmt(h.get(k)) for k in keys) + " |")
    lines += ["", "Epoch 0 is the base model before training. Scores are evidence recall at the validation "
              "budgets, dense-only and hybrid (dense + BM25).", "", "## Command", "", "```",
              str(p.get("command") or "(not recorded)"), "```", ""]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return "–" if value is None else str(value)


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def _atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
