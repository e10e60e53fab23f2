"""Tables, JSON and the plot of a router evaluation (:class:`~hybridctx.eval.router_eval.RouteReport`).

Why apart from the evaluation: the numbers are computed once and shown three
ways; keeping the presentation here keeps ``router_eval`` about measuring.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from hybridctx.eval.plotting import nan_to_none, panel_grid, save_panels

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.eval.router_eval import RouteReport

__all__ = ["report_json", "report_markdown", "write_report"]

_MARKERS = {"router": "o", "always-full": "s", "always-retrieve": "^"}


def _scopes(report: RouteReport) -> list[tuple[str, str | None, bool]]:
    """``(label, dataset or None, fits_only)``: each dataset, all questions, and those where full fits."""
    scopes = [(d, d, False) for d in report.datasets]
    if len(report.datasets) != 1:
        scopes.append(("all", None, False))
    if any(not r.full_fits for r in report.rows) and any(r.full_fits for r in report.rows):
        scopes.append(("all, full fits", None, True))
    return scopes


def _limits_text(report: RouteReport) -> str:
    lim = report.limits
    parts = [f"{k}={lim[k]:g}" for k in ("max_usd", "max_latency_s", "max_kv_gib") if lim.get(k) is not None]
    return ", ".join(parts) or "none"


def _router_budgets(report: RouteReport) -> str:
    budgets = sorted({r.router.budget for r in report.rows if r.router.mode == "retrieval"})
    if not budgets or budgets == [report.budget]:
        return ""
    span = f"{budgets[0]:,}" if len(budgets) == 1 else f"{budgets[0]:,}–{budgets[-1]:,}"
    return f" (the router's: {span})"


def report_markdown(report: RouteReport) -> str:
    """One table of the three policies per dataset (and overall), then the target check."""
    lines = [
        f"Router on profile `{report.profile}` (window {report.window:,} tokens, counted in "
        f"{report.tokenizer}); retrieval budget {report.budget:,}{_router_budgets(report)}; "
        f"limits: {_limits_text(report)}.",
        "",
        "| dataset | policy | n | recall | full share | tokens sent | tokens/q | est. USD | mean s | p50 s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, key, fits in _scopes(report):
        for t in report.totals(key, fits_only=fits).values():
            per_q = t.tokens / t.questions if t.questions else math.nan
            lines.append(
                f"| {label} | {t.policy} | {t.questions} | {_f(t.recall, 3)} | {_pct(t.full_share)} | "
                f"{t.tokens:,} | {_f(per_q, 0, ',')} | {t.usd:.4f} | {_f(t.latency_s, 2)} | {_f(t.latency_p50_s, 2)} |"
            )
    lines += [
        "",
        f"Target: router recall >= {report.min_recall_ratio:.0%} of always-full's for <= "
        f"{report.max_token_ratio:.0%} of its tokens.",
        "",
        "| dataset | router recall / always-full | router tokens / always-full | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for label, key, fits in _scopes(report):
        check = report.target(key, fits_only=fits)
        lines.append(f"| {label} | {_pct(check.recall_ratio)} | {_pct(check.token_ratio)} | "
                     f"{'yes' if check.met else 'no'} |")
    unfit = sum(1 for r in report.rows if not r.full_fits)
    if unfit:
        lines += ["", f"{unfit} of {len(report.rows)} questions have more context than fits {report.profile}; "
                      "always-full sends their first tokens up to the window and is scored on that "
                      "(\"all, full fits\" leaves them out)."]
    return "\n".join(lines) + "\n"


def report_json(report: RouteReport) -> str:
    """Settings, totals and target checks per dataset and overall, and every row."""
    totals, checks = {}, {}
    for label, key, fits in _scopes(report):
        totals[label] = {p: nan_to_none(asdict(t)) for p, t in report.totals(key, fits_only=fits).items()}
        check = report.target(key, fits_only=fits)
        checks[label] = nan_to_none({**asdict(check), "met": check.met})
    payload = {
        "profile": report.profile,
        "window": report.window,
        "tokenizer": report.tokenizer,
        "limits": dict(report.limits),
        "budget": report.budget,
        "datasets": list(report.datasets),
        "target": {"min_recall_ratio": report.min_recall_ratio, "max_token_ratio": report.max_token_ratio},
        "totals": totals,
        "checks": checks,
        "rows": [asdict(r) for r in report.rows],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def write_report(report: RouteReport, out_dir: str | Path, stem: str = "route") -> str:
    """Write ``{stem}.md``, ``{stem}.json`` and ``{stem}.png``; return the markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = report_markdown(report)
    (out / f"{stem}.md").write_text(table, encoding="utf-8")
    (out / f"{stem}.json").write_text(report_json(report), encoding="utf-8")
    plot_report(report, out / f"{stem}.png")
    return table


def plot_report(report: RouteReport, path: str | Path) -> Path:
    """Recall against tokens sent per question for the three policies, a panel per dataset.

    The shaded corner is the target: at least ``min_recall_ratio`` of
    always-full's recall for at most ``max_token_ratio`` of its tokens.
    """
    panels = _scopes(report)
    fig, axes = panel_grid(len(panels), 3.4)
    for ax, (label, key, fits) in zip(axes.flat, panels):
        totals = report.totals(key, fits_only=fits)
        points = {p: (max(1.0, t.tokens / t.questions), t.recall) for p, t in totals.items() if t.questions}
        full = totals["always-full"]
        xs = [x for x, _ in points.values()] or [1.0]
        lo, hi = min(xs) / 4, max(xs) * 2
        if full.questions and full.tokens:
            x_max = report.max_token_ratio * full.tokens / full.questions
            y_min = report.min_recall_ratio * full.recall
            lo = min(lo, x_max / 4)
            ax.axvspan(lo, x_max, ymin=max(0.0, y_min / 1.05), ymax=1, color="tab:green", alpha=0.12,
                       label="target")
        for policy, (x, y) in points.items():
            ax.scatter([x], [y], marker=_MARKERS[policy], s=60, label=policy, zorder=3)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.05)
        ax.set_title(label)
        ax.set_xlabel(f"context tokens per question ({report.tokenizer})")
        ax.grid(alpha=0.3)
    title = f"router on {report.profile}, budget {report.budget:,}{_router_budgets(report)}"
    return save_panels(fig, axes, len(panels), path, title=title)


def _f(value: float, digits: int, sep: str = "") -> str:
    return "–" if math.isnan(value) else format(value, f"{sep}.{digits}f")


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1%}"
