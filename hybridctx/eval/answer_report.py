"""Tables, JSON and the plot of an answer evaluation (:class:`~hybridctx.eval.answer_eval.AnswerReport`).

Why apart from the evaluation: the answers are judged once and shown three
ways: a markdown table per dataset and overall, JSON with every answer, and a
PNG of F1 (accuracy for a multiple-choice set) against the dollars each
policy spent.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hybridctx.eval.plotting import nan_to_none, panel_grid, save_figure
from hybridctx.eval.requires import eval_import
from hybridctx.eval.scoring import mean

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.eval.answer_eval import AnswerReport, AnswerRow

__all__ = ["policy_totals", "report_json", "report_markdown", "write_report"]


def policy_totals(rows: Sequence[AnswerRow]) -> dict[str, Any]:
    """Means of EM, F1, option accuracy and recall over the questions that have them; counts and spend."""
    def over(field: str) -> float:
        return mean(v for r in rows if (v := getattr(r, field)) is not None)

    n = len(rows)
    return {
        "questions": n,
        "em": over("em"),
        "f1": over("f1"),
        "mc_questions": sum(r.choice_correct is not None for r in rows),
        "mc_accuracy": over("choice_correct"),
        "refusal_rate": mean(float(r.refused) for r in rows),
        "first_refusal_rate": mean(float(r.first_refused) for r in rows),
        "escalations": sum(r.escalated for r in rows),
        "full_share": mean(float(r.mode == "full") for r in rows),
        "recall": over("recall"),
        "context_tokens": sum(r.context_tokens for r in rows),
        "spans_per_question": mean(r.spans for r in rows),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "calls": sum(r.calls for r in rows),
        "cached_calls": sum(r.cached_calls for r in rows),
        "usd": sum(r.usd for r in rows),
        "seconds": sum(r.seconds for r in rows),
        "mean_seconds": mean(r.seconds for r in rows),
        "errors": sum(r.error is not None for r in rows),
    }


def _scopes(report: AnswerReport) -> list[tuple[str, str | None]]:
    scopes: list[tuple[str, str | None]] = [(d, d) for d in report.datasets]
    if len(report.datasets) != 1:
        scopes.append(("all", None))
    return scopes


def report_markdown(report: AnswerReport) -> str:
    """One row per dataset and policy: scores, refusals, escalations and what was spent."""
    lines = [
        f"Answers by `{report.model}` (at most {report.max_tokens} tokens each), priced by profile "
        f"`{report.profile}`.",
        "",
        "| dataset | policy | n | EM | F1 | MC acc (n) | refused | escalated | full share | recall | spans/q | "
        "tokens in | tokens out | USD | wall s | s/q |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, key in _scopes(report):
        for policy, t in report.totals(key).items():
            mc = f"{_f(t['mc_accuracy'])} ({t['mc_questions']})" if t["mc_questions"] else "–"
            lines.append(
                f"| {label} | {policy} | {t['questions']} | {_f(t['em'])} | {_f(t['f1'])} | {mc} | "
                f"{_pct(t['refusal_rate'])} | {t['escalations']} | {_pct(t['full_share'])} | {_f(t['recall'])} | "
                f"{_f(t['spans_per_question'], 1)} | "
                f"{t['prompt_tokens']:,} | {t['completion_tokens']:,} | {t['usd']:.4f} | {t['seconds']:.1f} | "
                f"{_f(t['mean_seconds'], 1)} |"
            )
    calls = sum(r.calls for r in report.rows)
    cached = sum(r.cached_calls for r in report.rows)
    errors = [r for r in report.rows if r.error]
    lines += ["", f"{calls} LLM calls, {cached} of them answered from the cache (their seconds are those first "
                  "measured). EM/F1 over questions with gold answer text (a refusal scores 0; on an unanswerable "
                  "question it scores 1); 'refused' is the final answer; 'escalated' counts Self-Route's second "
                  "requests after a refused retrieval answer."]
    if errors:
        lines += ["", f"{len(errors)} prompts did not fit the model's window and were scored 0, e.g.: "
                      f"{errors[0].error}"]
    return "\n".join(lines) + "\n"


def report_json(report: AnswerReport) -> str:
    """Settings, totals per dataset and overall, and every answer."""
    payload = {
        "model": report.model,
        "profile": report.profile,
        "max_tokens": report.max_tokens,
        "policies": list(report.policies),
        "datasets": list(report.datasets),
        "totals": {label: {p: nan_to_none(t) for p, t in report.totals(key).items()}
                   for label, key in _scopes(report)},
        "rows": [asdict(r) for r in report.rows],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def write_report(report: AnswerReport, out_dir: str | Path, stem: str = "answers") -> str:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = report_markdown(report)
    for suffix, text in ((".md", table), (".json", report_json(report))):
        (out / f"{stem}{suffix}").write_text(text, encoding="utf-8")
    plot_report(report, out / f"{stem}.png")
    return table


def plot_report(report: AnswerReport, path: str | Path) -> Path:
    """F1 (option accuracy where a set has no answer text) against the dollars spent, per policy."""
    MaxNLocator = eval_import("matplotlib.ticker", "the answer plot of hybridctx eval").MaxNLocator

    panels = _scopes(report)
    fig, axes = panel_grid(len(panels), 3.4)
    for ax, (label, key) in zip(axes.flat, panels):
        totals = report.totals(key)
        ax.set_xlim(0, max([t["usd"] for t in totals.values()] + [1e-9]) * 1.25)  # from $0: a ratio is read off
        ax.xaxis.set_major_locator(MaxNLocator(4))
        for policy, t in totals.items():
            y = t["f1"] if not math.isnan(t["f1"]) else t["mc_accuracy"]
            if math.isnan(y):
                continue
            ax.scatter([t["usd"]], [y], s=60, label=policy, zorder=3)
        ax.set_ylim(0, 1.05)
        ax.set_title(label)
        ax.set_xlabel(f"USD spent ({report.profile} prices)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes[0][0].set_ylabel("answer F1 (MC accuracy)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"answers by {report.model}: F1 against dollars", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _f(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0%}"
