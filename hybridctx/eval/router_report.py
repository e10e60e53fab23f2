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
    if report.session:
        lines += session_lines(report)
    unfit = sum(1 for r in report.rows if not r.full_fits)
    if unfit:
        lines += ["", f"{unfit} of {len(report.rows)} questions have more context than fits {report.profile}; "
                      "always-full sends their first tokens up to the window and is scored on that "
                      "(\"all, full fits\" leaves them out)."]
    return "\n".join(lines) + "\n"


#: The session target of issue 14: the router's recall and dollars as shares of cached always-full's.
SESSION_RECALL, SESSION_USD = 0.95, 0.40


def session_check(report: RouteReport, dataset: str | None = None, *, fits_only: bool = False) -> dict[str, float]:
    """The router's recall and dollars against cached always-full's, and its height over the line
    joining always-retrieve and cached always-full in (USD, recall)."""
    t = report.totals(dataset, fits_only=fits_only)
    full, ret, router = t["always-full"], t["always-retrieve"], t["router"]
    recall_ratio = router.recall / full.recall if full.recall else math.nan
    usd_ratio = router.usd / full.usd if full.usd else math.nan
    if full.usd != ret.usd:
        line = ret.recall + (full.recall - ret.recall) * (router.usd - ret.usd) / (full.usd - ret.usd)
    else:
        line = max(full.recall, ret.recall)
    return {"recall_ratio": recall_ratio, "usd_ratio": usd_ratio, "above_line": router.recall - line,
            "met": bool(recall_ratio >= SESSION_RECALL and usd_ratio <= SESSION_USD)}


def session_lines(report: RouteReport) -> list[str]:
    """The session verdict: a row per scope."""
    lines = [
        "",
        f"Session workload: {report.session} questions per document within the cache TTL; always-full is "
        "*cached* always-full (each document's first question billed cold, the rest warm), and the router "
        "is billed warm for a document it already sent in full.",
        f"Target: router recall >= {SESSION_RECALL:.0%} of cached always-full's for <= {SESSION_USD:.0%} of its "
        "dollars, and its (USD, recall) point at or above the line joining always-retrieve and cached always-full.",
        "",
        "| dataset | router recall / always-full | router USD / always-full | above the line | met |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, key, fits in _scopes(report):
        c = session_check(report, key, fits_only=fits)
        lines.append(f"| {label} | {_pct(c['recall_ratio'])} | {_pct(c['usd_ratio'])} | {c['above_line']:+.3f} | "
                     f"{'yes' if c['met'] else 'no'} |")
    return lines


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
        "session": report.session,
        "session_checks": ({label: nan_to_none(session_check(report, key, fits_only=fits))
                            for label, key, fits in _scopes(report)} if report.session else None),
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
    plot_usd(report, out / f"{stem}_usd.png")
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


def plot_usd(report: RouteReport, path: str | Path) -> Path:
    """Recall against estimated dollars per question for the three policies, a panel per dataset."""
    panels = _scopes(report)
    fig, axes = panel_grid(len(panels), 3.4)
    full_name = "cached always-full" if report.session else "always-full"
    for ax, (label, key, fits) in zip(axes.flat, panels):
        totals = report.totals(key, fits_only=fits)
        points = {p: (t.usd / t.questions, t.recall) for p, t in totals.items() if t.questions}
        if {"always-full", "always-retrieve"} <= set(points):
            (x0, y0), (x1, y1) = points["always-retrieve"], points["always-full"]
            ax.plot([x0, x1], [y0, y1], color="grey", lw=0.8, ls="--", zorder=1)
        for policy, (x, y) in points.items():
            ax.scatter([x], [y], marker=_MARKERS[policy], s=60, zorder=3,
                       label=full_name if policy == "always-full" else policy)
        ax.set_ylim(0, 1.05)
        ax.set_xlim(left=0)
        ax.set_title(label)
        ax.set_xlabel("estimated USD per question")
        ax.grid(alpha=0.3)
    kind = f", sessions of {report.session}" if report.session else ""
    return save_panels(fig, axes, len(panels), path, title=f"recall vs dollars on {report.profile}{kind}")


def _f(value: float, digits: int, sep: str = "") -> str:
    return "–" if math.isnan(value) else format(value, f"{sep}.{digits}f")


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1%}"
