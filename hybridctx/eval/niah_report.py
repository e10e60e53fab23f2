"""The results of a needle-in-a-haystack run: records, grid means, table and JSON.

Why apart from the runner: the records are what the CLI prints, what
``results.json`` holds and what the heatmap draws, so the three are made from
one place and cannot disagree.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from hybridctx.eval.haystack import PlacedNeedle

__all__ = ["Cell", "NIAHResults", "Outcome", "Trial", "length_label"]

FORMAT = "hybridctx-niah"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Outcome:
    """One method on one trial.

    Attributes:
        method: its name.
        passed: every needle (not distractor) lies whole inside the packed ranges.
        found: needles packed whole.
        needles: needles hidden.
        distractors_packed: distractors (multikey) packed whole.
        distractors: distractors hidden.
        tokens: tokens packed (``<= budget``).
        prepare_s: seconds to index the trial's document.
        retrieve_ms: milliseconds to retrieve and pack.
        answer: the LLM's answer (with ``--llm``).
        llm_passed: the answer holds every needle's value.
        llm_seconds: the LLM call's wall time.
    """

    method: str
    passed: bool
    found: int
    needles: int
    distractors_packed: int
    distractors: int
    tokens: int
    prepare_s: float
    retrieve_ms: float
    answer: str | None = None
    llm_passed: bool | None = None
    llm_seconds: float | None = None


@dataclass(frozen=True)
class Trial:
    """One document: a haystack cut to ``length`` with needles at ``depth``."""

    length: int
    depth: float
    repeat: int
    doc_id: str
    doc_chars: int
    haystack_units: int
    question: str
    needles: tuple[PlacedNeedle, ...]
    outcomes: tuple[Outcome, ...]

    def outcome(self, method: str) -> Outcome:
        return next(o for o in self.outcomes if o.method == method)


@dataclass(frozen=True)
class Cell:
    """The mean of one method over the trials of one (length, depth)."""

    method: str
    length: int
    depth: float
    trials: int
    pass_rate: float
    distractors_packed_rate: float | None
    llm_pass_rate: float | None


@dataclass(frozen=True)
class NIAHResults:
    """Everything a run measured. ``config`` is the :class:`~hybridctx.eval.niah.NIAHConfig`."""

    config: Any
    haystack: Mapping[str, Any]
    methods: tuple[str, ...]
    trials: tuple[Trial, ...]
    seconds: float
    haystack_units: Mapping[int, int]
    encoder: Mapping[str, Any]
    llm: str | None = None

    @property
    def lengths(self) -> list[int]:
        return list(dict.fromkeys(t.length for t in self.trials))

    @property
    def depths(self) -> list[float]:
        return sorted(set(t.depth for t in self.trials))

    def cell(self, method: str, length: int, depth: float) -> Cell | None:
        """The (length, depth) mean of a method; ``None`` where ``--limit`` left no trial."""
        outs = [t.outcome(method) for t in self.trials if t.length == length and t.depth == depth]
        return _cell(method, length, depth, outs) if outs else None

    def summary(self, method: str) -> Cell:
        """The mean of a method over every trial (``length`` 0, ``depth`` -1)."""
        return _cell(method, 0, -1.0, [t.outcome(method) for t in self.trials])

    def table(self) -> str:
        """Markdown: a summary row per method, then a depth × length pass-rate grid per method."""
        cfg = self.config
        unit = "tokens" if cfg.unit == "tokens" else "chars"
        head = (f"NIAH {cfg.variant}: {len(self.trials)} trials, budget {cfg.budget} {cfg.tokenizer} tokens, "
                f"lengths in {cfg.tokenizer if unit == 'tokens' else 'characters'}, haystack "
                f"{Path(str(self.haystack['source'])).name} ({self.haystack['language']})")
        lines = [head, "", "| method | pass rate | trials | distractors packed | llm pass | tokens | prepare s | retrieve ms |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for m in self.methods:
            s = self.summary(m)
            outs = [t.outcome(m) for t in self.trials]
            lines.append(
                f"| {m} | {s.pass_rate:.3f} | {s.trials} | {_opt(s.distractors_packed_rate)} | {_opt(s.llm_pass_rate)} "
                f"| {sum(o.tokens for o in outs) / len(outs):.0f} | {sum(o.prepare_s for o in outs):.1f} "
                f"| {sum(o.retrieve_ms for o in outs) / len(outs):.1f} |")
        lengths, depths = self.lengths, self.depths
        for m in self.methods:
            lines += ["", f"{m}: pass rate by depth (rows) and length (columns)", "",
                      "| depth | " + " | ".join(length_label(n) for n in lengths) + " |",
                      "| ---: |" + " ---: |" * len(lengths)]
            for d in depths:
                cells = [self.cell(m, n, d) for n in lengths]
                lines.append(f"| {d:g}% | " + " | ".join("–" if c is None else f"{c.pass_rate:.2f}" for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """Config, per-length sizes, grid means, per-method summaries and every trial."""
        grid = [asdict(c) for m in self.methods for n in self.lengths for d in self.depths
                if (c := self.cell(m, n, d)) is not None]
        summary = {}
        for m in self.methods:
            s = self.summary(m)
            outs = [t.outcome(m) for t in self.trials]
            summary[m] = {"pass_rate": s.pass_rate, "trials": s.trials,
                          "distractors_packed_rate": s.distractors_packed_rate, "llm_pass_rate": s.llm_pass_rate,
                          "mean_tokens": sum(o.tokens for o in outs) / len(outs),
                          "prepare_s": round(sum(o.prepare_s for o in outs), 3),
                          "mean_retrieve_ms": round(sum(o.retrieve_ms for o in outs) / len(outs), 3)}
        trials = []
        for t in self.trials:
            needles = [{"text": p.needle.text, "value": p.needle.value, "key": p.needle.key, "role": p.needle.role,
                        "depth": p.depth, "start": p.start, "end": p.end} for p in t.needles]
            results = {}
            for o in t.outcomes:
                r = {k: v for k, v in asdict(o).items() if k != "method" and v is not None}
                r["prepare_s"], r["retrieve_ms"] = round(o.prepare_s, 4), round(o.retrieve_ms, 3)
                results[o.method] = r
            trials.append({"length": t.length, "depth": t.depth, "repeat": t.repeat, "doc_id": t.doc_id,
                           "doc_chars": t.doc_chars, "haystack_units": t.haystack_units, "question": t.question,
                           "needles": needles, "results": results})
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config, "haystack": dict(self.haystack),
                "llm": self.llm, "methods": list(self.methods),
                "lengths": [{"length": n, "label": length_label(n), "haystack_units": self.haystack_units.get(n)}
                            for n in self.lengths],
                "depths": self.depths, "grid": grid, "summary": summary, "seconds": round(self.seconds, 2),
                "encoder_cache": dict(self.encoder), "trials": trials}

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``results.json``, ``results.md`` and ``heatmap.png`` into ``out_dir``."""
        from hybridctx.eval.heatmap import plot_heatmap

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "results.json", "table": out / "results.md", "heatmap": out / "heatmap.png"}
        paths["json"].write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths["table"].write_text(self.table(), encoding="utf-8")
        plot_heatmap(self, paths["heatmap"])
        return paths


def length_label(n: int) -> str:
    """``1000`` → ``1k``, ``128000`` → ``128k``, ``2000000`` → ``2M``, ``1500`` → ``1.5k``, ``976`` → ``976``."""
    for size, suffix in ((1_000_000, "M"), (1000, "k")):
        if n >= size and (n * 10) % size == 0:
            return f"{n / size:g}{suffix}"
    return str(n)


def _cell(method: str, length: int, depth: float, outs: list[Outcome]) -> Cell:
    with_d = [o.distractors_packed / o.distractors for o in outs if o.distractors]
    with_llm = [o.llm_passed for o in outs if o.llm_passed is not None]
    return Cell(method, length, depth, len(outs), sum(o.passed for o in outs) / len(outs),
                sum(with_d) / len(with_d) if with_d else None,
                sum(with_llm) / len(with_llm) if with_llm else None)


def _opt(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"
