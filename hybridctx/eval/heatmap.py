"""The needle-in-a-haystack heatmap: depth × length, one panel per method.

Why: the picture Kamradt made familiar (green where the needle is found, red
where it is lost) shows at a glance where a method breaks. matplotlib is
imported on first use (:mod:`~hybridctx.eval.plotting`), with the headless Agg
backend unless the caller chose one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybridctx.eval.plotting import pyplot, save_figure

__all__ = ["plot_heatmap"]

# Kamradt's colours: lost, half, found.
_COLOURS = ["#F0496E", "#EBB839", "#0CD79F"]


def plot_heatmap(results: Any, path: str | Path) -> Path:
    """Draw a :class:`~hybridctx.eval.niah_report.NIAHResults` as a PNG.

    Rows are depths (0% at the top), columns lengths; a cell is the pass rate of
    its trials (grey where ``--limit`` left none). With an LLM, a second row of
    panels shows whether the answers held the needle's value.

    Returns:
        ``path``.
    """
    plt = pyplot()
    import numpy as np
    from hybridctx.eval.requires import eval_import

    LinearSegmentedColormap = eval_import("matplotlib.colors", "the NIAH heatmap").LinearSegmentedColormap

    from hybridctx.eval.niah_report import length_label

    cmap = LinearSegmentedColormap.from_list("niah", _COLOURS).with_extremes(bad="#DDDDDD")
    lengths, depths = results.lengths, results.depths
    rows = [("pass_rate", "packed")] + ([("llm_pass_rate", f"answered ({results.llm})")] if results.llm else [])
    cols = len(results.methods)
    width = max(3.2, 0.55 * len(lengths) + 1.6)
    height = max(2.6, 0.32 * len(depths) + 1.2)
    fig, axes = plt.subplots(len(rows), cols, figsize=(width * cols, height * len(rows)),
                             squeeze=False, layout="constrained")
    annotate = len(lengths) * len(depths) <= 144
    image = None
    for r, (field, what) in enumerate(rows):
        for c, method in enumerate(results.methods):
            grid = np.full((len(depths), len(lengths)), np.nan)
            for i, d in enumerate(depths):
                for j, n in enumerate(lengths):
                    cell = results.cell(method, n, d)
                    value = None if cell is None else getattr(cell, field)
                    if value is not None:
                        grid[i, j] = value
            ax = axes[r][c]
            image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
            if annotate:
                for i in range(len(depths)):
                    for j in range(len(lengths)):
                        if not np.isnan(grid[i, j]):
                            ax.text(j, i, f"{grid[i, j]:.2f}".rstrip("0").rstrip("."), ha="center", va="center",
                                    fontsize=7, color="black")
            mean = np.nanmean(grid) if np.isfinite(grid).any() else float("nan")
            ax.set_title(f"{method} {what}: {mean:.0%}", fontsize=9)
            ax.set_xticks(range(len(lengths)), [length_label(n) for n in lengths], fontsize=8)
            ax.set_yticks(range(len(depths)), [f"{d:g}%" for d in depths], fontsize=7)
            ax.set_xlabel(f"context length ({'chars' if results.config.unit == 'chars' else 'tokens'})", fontsize=8)
            if c == 0:
                ax.set_ylabel("needle depth", fontsize=8)
    cfg = results.config
    fig.suptitle(f"needle in a haystack ({cfg.variant}), budget {cfg.budget} tokens, "
                 f"{Path(str(results.haystack['source'])).name}", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="pass rate")
    return save_figure(fig, path)
