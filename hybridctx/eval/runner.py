"""Runs retrieval methods over evaluation sets and reports scores, tokens and latency.

Why: one loop, the same for hybridctx and every peer, so that no method is
measured differently. For each dataset and method it prepares the corpus once
(timed), then for every question and budget it times ``retrieve``, checks the
answer against the budget (:func:`~hybridctx.eval.scoring.check_budget`:
over-budget answers abort the run), and scores it. Results aggregate to the
mean per dataset per budget and render as a markdown table, JSON, or a plot.

Beside the DESIGN.md score, each answer is also scored by every rule its gold
allows (evidence ranges, answer positions, gold paragraphs), so a reader sees
e.g. whether drcd's answer was packed *and* whether its sentence was; the
per-question rows are kept so any number can be recomputed from the JSON.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

from hybridctx.errors import ConfigError
from hybridctx.eval.datasets import EvalSet
from hybridctx.eval.peers import RetrievalMethod
from hybridctx.eval.plotting import nan_to_none, panel_grid, save_panels
from hybridctx.eval.scoring import answer_hit, check_budget, evidence_recall, mean, paragraph_recall, score_question
from hybridctx.packing.tokens import TokenCounter, get_counter

__all__ = ["DEFAULT_BUDGETS", "Cell", "PrepareTime", "QuestionRow", "Results", "evaluate"]

DEFAULT_BUDGETS = (512, 1024, 2048, 4096)


@dataclass(frozen=True)
class Cell:
    """The means of one method on one dataset at one budget.

    Attributes:
        method: the method's name.
        dataset: the dataset's name.
        budget: the token budget.
        questions: how many questions were scored.
        score: mean score in ``[0, 1]`` (``nan`` without questions).
        tokens: mean tokens packed.
        latency_ms: mean wall time of one ``retrieve`` call.
        evidence_recall: mean evidence recall over the questions with
            evidence ranges (``nan`` when none has them).
        answer_hit: share of questions with gold answer positions whose
            answer was fully packed (``nan`` when none has them).
        paragraph_recall: mean gold-paragraph recall over multi-document
            questions (``nan`` when none is).
        latency_p50_ms: median wall time of one ``retrieve`` call.
    """

    method: str
    dataset: str
    budget: int
    questions: int
    score: float
    tokens: float
    latency_ms: float
    evidence_recall: float = math.nan
    answer_hit: float = math.nan
    paragraph_recall: float = math.nan
    latency_p50_ms: float = math.nan


@dataclass(frozen=True)
class QuestionRow:
    """One method's answer to one question at one budget.

    The metric fields are ``None`` where the question's gold does not allow
    that rule (e.g. no answer positions).
    """

    method: str
    dataset: str
    budget: int
    id: str
    score: float
    tokens: int
    latency_ms: float
    evidence_recall: float | None = None
    answer_hit: float | None = None
    paragraph_recall: float | None = None


@dataclass(frozen=True)
class PrepareTime:
    """Wall time of ``prepare`` (parsing, encoding, indexing) for one method and dataset."""

    method: str
    dataset: str
    seconds: float
    docs: int


@dataclass(frozen=True)
class Results:
    """Everything :func:`evaluate` measured."""

    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    budgets: tuple[int, ...]
    cells: tuple[Cell, ...]
    prepare: tuple[PrepareTime, ...] = ()
    tokenizer: str = "cl100k_base"
    rows: tuple[QuestionRow, ...] = ()

    def cell(self, method: str, dataset: str, budget: int) -> Cell:
        """The cell of one method, dataset and budget.

        Raises:
            KeyError: no such cell.
        """
        for c in self.cells:
            if (c.method, c.dataset, c.budget) == (method, dataset, budget):
                return c
        raise KeyError(f"no result for method {method!r}, dataset {dataset!r}, budget {budget}")

    def average(self, method: str, budget: int, field: str = "score") -> float:
        """Unweighted mean of ``field`` over the datasets (each dataset counts once)."""
        values = [getattr(self.cell(method, d, budget), field) for d in self.datasets]
        return mean(v for v in values if not math.isnan(v))

    def to_markdown(self, *, timings: bool = True, detail: bool = False) -> str:
        """A table: one row per method, columns ``dataset@budget`` then ``avg@budget``.

        With ``timings``, a second table gives the mean tokens sent and the
        mean and median latency per budget (averaged over datasets) and the
        total ``prepare`` time of each method. With ``detail``, a third table
        has one row per method, dataset and budget with every metric.
        """
        head = [f"{d}@{b}" for d in self.datasets for b in self.budgets] + [f"avg@{b}" for b in self.budgets]
        lines = [_row(["method", *head]), _row(["---"] + ["---:"] * len(head))]
        for m in self.methods:
            values = [self.cell(m, d, b).score for d in self.datasets for b in self.budgets]
            values += [self.average(m, b) for b in self.budgets]
            lines.append(_row([m, *(_fmt(v) for v in values)]))
        if timings:
            head = ([f"tokens@{b}" for b in self.budgets] + [f"ms@{b}" for b in self.budgets]
                    + [f"p50 ms@{b}" for b in self.budgets] + ["prepare s"])
            lines += ["", _row(["method", *head]), _row(["---"] + ["---:"] * len(head))]
            for m in self.methods:
                tokens = [f"{self.average(m, b, 'tokens'):.0f}" for b in self.budgets]
                ms = [f"{self.average(m, b, 'latency_ms'):.1f}" for b in self.budgets]
                p50 = [f"{self.average(m, b, 'latency_p50_ms'):.1f}" for b in self.budgets]
                prep = sum(p.seconds for p in self.prepare if p.method == m)
                lines.append(_row([m, *tokens, *ms, *p50, f"{prep:.1f}"]))
        if detail:
            head = ["method", "dataset", "budget", "n", "score", "evidence recall", "answer hit",
                    "paragraph recall", "tokens", "mean ms", "p50 ms"]
            lines += ["", _row(head), _row(["---"] * 3 + ["---:"] * (len(head) - 3))]
            for c in self.cells:
                lines.append(_row([c.method, c.dataset, str(c.budget), str(c.questions), _fmt(c.score),
                                   _fmt(c.evidence_recall), _fmt(c.answer_hit), _fmt(c.paragraph_recall),
                                   f"{c.tokens:.0f}", f"{c.latency_ms:.1f}", f"{c.latency_p50_ms:.1f}"]))
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        """All cells and timings as JSON (``nan`` is written as ``null``)."""
        payload = {
            "tokenizer": self.tokenizer,
            "methods": list(self.methods),
            "datasets": list(self.datasets),
            "budgets": list(self.budgets),
            "cells": [nan_to_none(asdict(c)) for c in self.cells],
            "prepare": [asdict(p) for p in self.prepare],
            "averages": {m: {str(b): _none(self.average(m, b)) for b in self.budgets} for m in self.methods},
            "rows": [asdict(r) for r in self.rows],
        }
        return json.dumps(payload, indent=2, ensure_ascii=False)

    def write(self, out_dir: str | Path, *, plot_name: str = "recall.png", detail: bool = False) -> str:
        """Write ``results.md``, ``results.json`` and the plot into ``out_dir``; return the table."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        table = self.to_markdown(detail=detail)
        (out / "results.md").write_text(table, encoding="utf-8")
        (out / "results.json").write_text(self.to_json(), encoding="utf-8")
        self.plot(out / plot_name)
        return table

    def plot(self, path: str | Path) -> Path:
        """Write a PNG of score against budget per method: the average, then each dataset."""
        panels = ["average", *self.datasets]
        fig, axes = panel_grid(len(panels), 3.2)
        for ax, panel in zip(axes.flat, panels):
            for m in self.methods:
                if panel == "average":
                    ys = [self.average(m, b) for b in self.budgets]
                else:
                    ys = [self.cell(m, panel, b).score for b in self.budgets]
                ax.plot(self.budgets, ys, marker="o", label=m)
            ax.set_xscale("log", base=2)
            ax.set_xticks(self.budgets, [str(b) for b in self.budgets])
            ax.set_ylim(0, 1.02)
            ax.set_title(panel)
            ax.set_xlabel(f"budget ({self.tokenizer} tokens)")
            ax.grid(alpha=0.3)
        return save_panels(fig, axes, len(panels), path)


def evaluate(
    eval_sets: Mapping[str, EvalSet],
    methods: Sequence[RetrievalMethod],
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    *,
    tokenizer: str | TokenCounter = "cl100k_base",
    show_progress: bool | None = None,
) -> Results:
    """Score every method on every set at every budget.

    Args:
        eval_sets: ``name -> EvalSet``; each set's ``scope`` decides whether a
            question searches its own document or the whole corpus.
        methods: the methods; their names must differ.
        budgets: token budgets.
        tokenizer: the tokenizer budgets are stated in (a name or a counter).
        show_progress: tqdm bar over questions (``None``: on a terminal).

    Returns:
        The per-dataset, per-budget means, the prepare times and one row per
        method, question and budget.

    Raises:
        BudgetError: a method packed more tokens than the budget.
        InputError: a method packed malformed or overlapping ranges.
        ConfigError: two methods share a name.
    """
    from tqdm.auto import tqdm

    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ConfigError(f"method names must differ, got {names}; give each method its own name")
    counter = get_counter(tokenizer) if isinstance(tokenizer, str) else tokenizer
    budgets = tuple(int(b) for b in budgets)
    cells: list[Cell] = []
    prepare: list[PrepareTime] = []
    rows: list[QuestionRow] = []
    for set_name, eval_set in eval_sets.items():
        for method in methods:
            started = time.perf_counter()
            method.prepare(eval_set.docs)
            prepare.append(PrepareTime(method.name, set_name, time.perf_counter() - started, len(eval_set.docs)))
            mine: dict[int, list[QuestionRow]] = {b: [] for b in budgets}
            bar = tqdm(eval_set.questions, desc=f"{method.name} on {set_name}", unit="q",
                       disable=None if show_progress is None else not show_progress)
            for item in bar:
                doc_ids = eval_set.doc_ids_for(item)
                for budget in budgets:
                    started = time.perf_counter()
                    ranges = method.retrieve(item.question, doc_ids, budget)
                    ms = (time.perf_counter() - started) * 1000
                    tokens = check_budget(ranges, eval_set.docs, budget, counter, method=method.name)
                    mine[budget].append(QuestionRow(
                        method.name, set_name, budget, item.id, score_question(item, ranges, eval_set.docs),
                        tokens, ms, evidence_recall(item, ranges), answer_hit(item, ranges),
                        paragraph_recall(item, ranges, eval_set.docs),
                    ))
            for budget in budgets:
                cells.append(_cell(method.name, set_name, budget, mine[budget]))
                rows.extend(mine[budget])
    return Results(tuple(names), tuple(eval_sets), budgets, tuple(cells), tuple(prepare), counter.name, tuple(rows))


def _cell(method: str, dataset: str, budget: int, rows: Sequence[QuestionRow]) -> Cell:
    def over(field: str) -> float:
        return mean(v for r in rows if (v := getattr(r, field)) is not None)

    latencies = [r.latency_ms for r in rows]
    return Cell(
        method, dataset, budget, len(rows), mean(r.score for r in rows), mean(r.tokens for r in rows),
        mean(latencies), over("evidence_recall"), over("answer_hit"), over("paragraph_recall"),
        statistics.median(latencies) if latencies else math.nan,
    )


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value
