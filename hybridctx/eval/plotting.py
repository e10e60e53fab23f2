"""The figure scaffolding the evaluation reports share: a grid of panels, written as a PNG.

Why: the QA results, the router report and the needle heatmap each draw their
own axes but lay out, label and save the figure the same way; doing that once
here keeps the reports about their numbers. matplotlib loads on first use.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["nan_to_none", "panel_grid", "pyplot", "save_figure", "save_panels"]


def pyplot() -> Any:
    """``matplotlib.pyplot``, on the headless Agg backend unless the caller chose one."""
    from hybridctx.eval.requires import eval_import

    matplotlib = eval_import("matplotlib", "the plots of hybridctx eval")
    matplotlib.use("Agg", force=False)
    return eval_import("matplotlib.pyplot", "the plots of hybridctx eval")


def panel_grid(n_panels: int, panel_height: float) -> tuple[Any, Any]:
    """A figure of ``n_panels`` panels, four to a row, sharing the y axis.

    Returns:
        ``fig`` and ``axes`` (a 2-d array of axes, unused ones included).
    """
    cols = min(4, n_panels)
    rows = math.ceil(n_panels / cols)
    return pyplot().subplots(rows, cols, figsize=(4 * cols, panel_height * rows), squeeze=False, sharey=True)


def save_panels(fig: Any, axes: Any, n_panels: int, path: str | Path, *, title: str | None = None) -> Path:
    """Blanks the unused panels, labels recall and the legend on the first, and saves the PNG.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    for ax in list(axes.flat)[n_panels:]:
        ax.axis("off")
    axes[0][0].set_ylabel("recall")
    axes[0][0].legend(fontsize=7, loc="lower right")
    if title is not None:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Writes ``fig`` as a PNG at ``path`` (creating its folder) and closes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path


def nan_to_none(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with every float ``nan`` replaced by ``None`` (JSON has no ``nan``)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
