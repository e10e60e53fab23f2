"""Recall against dollars per policy for the issue-14 session workload (one PNG for docs/benchmarks.md).

Reads the ``eval route --session`` reports and draws, per profile, the (USD per question, recall)
point of always-retrieve, cached always-full, the router (cached_full_usd_ratio 1.0), the router with
--adaptive-budget and the router at the default ratio 1.1,
over the questions whose full context fits, with the line joining always-retrieve and cached
always-full (the issue's bar: the router at or above it):

    python benchmarks/plot_sessions.py results/i14 --out docs/results

It writes ``OUT/route_sessions_usd.png``, the command and commit in the PNG's text chunks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import add_out_argument, figure_metadata

RUNS = {"kimi": ("route_kimi_session", "route_kimi_session_adaptive", "route_kimi_session_r1.1"),
        "qwen2.5-7b-1m on an H100 (vLLM)": ("route_qwen_session", "route_qwen_session_adaptive",
                                            "route_qwen_session_r1.1")}
SCOPE = "all, full fits"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, metavar="RESULTS_DIR", help="the folder of the eval route --session reports")
    add_out_argument(parser, "docs/results", help="write route_sessions_usd.png into this directory")
    args = parser.parse_args(argv)
    plot(args.results, args.out / "route_sessions_usd.png", figure_metadata(argv))
    return 0


def plot(folder: Path, out: Path, metadata: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(RUNS), figsize=(5.2 * len(RUNS), 4.0))
    for ax, (title, (plain, adaptive, ratio)) in zip(axes, RUNS.items()):
        base = json.loads((Path(folder) / f"{plain}.json").read_text(encoding="utf-8"))
        totals = base["totals"].get(SCOPE) or base["totals"]["all"]
        points = {"always-retrieve": totals["always-retrieve"], "cached always-full": totals["always-full"],
                  "router, cached_full_usd_ratio 1.0": totals["router"]}
        for label, stem in (("router, adaptive budget (1.0)", adaptive), ("router, ratio 1.1 (default)", ratio)):
            extra = Path(folder) / f"{stem}.json"
            if extra.is_file():
                other = json.loads(extra.read_text(encoding="utf-8"))["totals"]
                points[label] = (other.get(SCOPE) or other["all"])["router"]
        xy = {k: (v["usd"] / v["questions"], v["recall"]) for k, v in points.items()}
        (x0, y0), (x1, y1) = xy["always-retrieve"], xy["cached always-full"]
        ax.plot([x0, x1], [y0, y1], color="grey", lw=0.8, ls="--", label="retrieve-full line")
        for (name, (x, y)), marker in zip(xy.items(), "^sovP"):
            ax.scatter([x], [y], marker=marker, s=70, label=name, zorder=3)
        ax.axvline(0.4 * x1, color="tab:green", lw=0.8, ls=":", label="40% of cached full")
        ax.axhline(0.95 * y1, color="tab:red", lw=0.8, ls=":", label="95% of full recall")
        ax.set_title(f"{title}, sessions of {base['session']}")
        ax.set_xlabel("estimated USD per question")
        ax.set_ylabel("evidence recall")
        ax.set_xlim(left=0)
        ax.set_ylim(0.7, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, metadata=metadata)


if __name__ == "__main__":
    sys.exit(main())
