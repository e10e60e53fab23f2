"""Draws docs/images/concepts.png: landmarks, windows, hits, spans and packing on one document.

    python docs/figures/concepts.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "images" / "concepts.png"

# One document: 14 sentences (widths in characters), two paragraphs.
SENTENCES = [5, 8, 4, 7, 6, 9, 5, 6, 8, 4, 7, 5, 6, 9]
PARAGRAPH_BREAK = 7  # sentence index where paragraph 2 starts
HITS = {5: "dense", 12: "BM25"}


def main() -> None:
    fig, ax = plt.subplots(figsize=(12, 6.2))
    ax.set_xlim(-4, 96)
    ax.set_ylim(-1.2, 11.6)
    ax.axis("off")
    ends, x = [], 0.0
    for i, width in enumerate(SENTENCES):
        if i == PARAGRAPH_BREAK:
            x += 2.0
        ax.add_patch(Rectangle((x, 9), width - 0.3, 1, color="#dfe7f2", ec="#8aa0bf"))
        ax.text(x + width / 2, 9.5, f"s{i + 1}", ha="center", va="center", fontsize=8)
        ends.append(x + width - 0.3)
        ax.plot([ends[-1]], [10.35], marker="v", color="#c0392b", ms=6)  # the landmark
        x += width
    ax.text(-3.5, 9.5, "document", ha="left", va="center", fontsize=9, rotation=90)
    ax.text(ends[0], 10.9, "landmark = end of each sentence", color="#c0392b", fontsize=9)

    # Overlapping encoder windows.
    for k, (a, b) in enumerate([(0, 40), (30, 72), (62, 95)]):
        y = 7.6 - 0.55 * k
        ax.add_patch(FancyBboxPatch((a, y), b - a, 0.35, boxstyle="round,pad=0.02", color="#f5d7a1", ec="#c98b1b"))
        ax.text(b + 0.5, y + 0.17, f"window {k + 1}", fontsize=8, va="center")
    ax.text(-3.5, 6.9, "encoder", ha="left", va="center", fontsize=9, rotation=90)
    ax.text(0, 5.9, "each landmark's vector is read inside the window where it has the most preceding context",
            fontsize=9, color="#7a5410")

    # Hits and the spans they grow into (mostly backwards, within the paragraph).
    starts = [e - (w - 0.3) for e, w in zip(ends, SENTENCES)]
    for hit, source in HITS.items():
        ax.plot([ends[hit]], [4.6], marker="*", color="#1f7a3a", ms=14)
        ax.text(ends[hit] + 0.6, 4.65, f"{source} hit", fontsize=8, color="#1f7a3a")
        first = max(hit - 3, PARAGRAPH_BREAK if hit >= PARAGRAPH_BREAK else 0)
        last = min(hit + 1, len(SENTENCES) - 1 if hit >= PARAGRAPH_BREAK else PARAGRAPH_BREAK - 1)
        ax.add_patch(Rectangle((starts[first], 3.4), ends[last] - starts[first], 0.7, color="#bfe3c8", ec="#1f7a3a"))
        ax.text((starts[first] + ends[last]) / 2, 3.75, f"span s{first + 1}–s{last + 1}", ha="center",
                va="center", fontsize=8)
    ax.text(-3.5, 3.9, "spans", ha="left", va="center", fontsize=9, rotation=90)
    ax.text(0, 2.7, "a hit grows into whole sentences: 3 back, 1 forward, never across a paragraph; "
            "overlapping spans merge", fontsize=9, color="#1f5f30")

    # Packing into an exact budget, in document order.
    budget = 70
    ax.add_patch(Rectangle((0, 0.4), budget, 1.2, fill=False, ec="#333", lw=1.5, ls="--"))
    ax.text(budget + 1, 1.0, "token budget\n(exact, target tokenizer)", fontsize=8, va="center")
    blocks = [("[1] doc s3–s7", 33, "#bfe3c8"), ("[2] doc s10–s14 (trimmed to s10–s13)", 30, "#bfe3c8")]
    x = 0.5
    for label, width, color in blocks:
        ax.add_patch(Rectangle((x, 0.55), width, 0.9, color=color, ec="#1f7a3a"))
        ax.text(x + width / 2, 1.0, label, ha="center", va="center", fontsize=8)
        x += width + 1
    ax.text(-3.5, 1.0, "packed", ha="left", va="center", fontsize=9, rotation=90)
    ax.text(0, -0.6, "best spans first, trimmed to whole sentences when that serves better, laid out in "
            "document order with a marker per span for citations", fontsize=9)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(OUT)


if __name__ == "__main__":
    main()
