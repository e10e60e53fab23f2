"""A tiny corpus in the ../shared/data format, written into a test's tmp_path.

``tiny`` (one-document scope): ``q-first`` has its evidence (and answer
position) in the first sentence of ``manual``; ``q-deep`` has its evidence in
the last sentence of ``log``, about 300 cl100k tokens in.
``hotpotqa`` (corpus scope, scored by gold paragraphs): six paragraphs of about
60 tokens; ``q-multi``'s gold paragraphs are ``p0`` and ``p3``.
"""

from __future__ import annotations

import json
from pathlib import Path

FIRST = "The reactor coolant pump must be inspected every ninety days by a certified engineer."
FILLER = [
    "The cafeteria serves lentil soup on Mondays and grilled fish on Fridays.",
    "Visitors sign the blue ledger at the front desk before entering the hall.",
    "The parking garage closes at midnight except during the winter festival.",
    "Printer paper is stored in the cabinet beside the second floor kitchen.",
    "The quarterly newsletter lists birthdays, retirements and new hires.",
    "Bicycles must be locked to the racks behind the east entrance.",
]
DEEP = "The backup generator was last refuelled on the fourth of March by Ingrid Olsen."
MANUAL = " ".join([FIRST, *FILLER])
LOG = " ".join(FILLER * 4 + [DEEP])
ANSWER = "ninety days"

TOPICS = ["glaciers", "volcanoes", "orchards", "lighthouses", "railways", "libraries"]


def paragraph(i: int, topic: str) -> str:
    return (f"Paragraph {i} is about {topic}. " + f"It describes how {topic} change over long periods of time "
            f"and why people who study {topic} travel far to see them in person. ") * 2


PARAGRAPHS = {f"p{i}": paragraph(i, t) for i, t in enumerate(TOPICS)}


def _write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def write_tiny_corpus(root: Path) -> Path:
    """Write ``root/tiny`` and ``root/hotpotqa``; return ``root``."""
    first_end = len(FIRST)
    answer_start = MANUAL.index(ANSWER)
    deep_start = LOG.index(DEEP)
    _write(root / "tiny" / "docs.jsonl", [
        {"doc_id": "manual", "title": "Plant manual", "text": MANUAL},
        {"doc_id": "log", "title": "Maintenance log", "text": LOG},
    ])
    _write(root / "tiny" / "qa.jsonl", [
        {"id": "q-first", "doc_id": "manual", "question": "How often must the reactor coolant pump be inspected?",
         "answers": [ANSWER], "evidence": [FIRST], "evidence_offsets": [[0, first_end]],
         "answer_offsets": [[answer_start, answer_start + len(ANSWER)]]},
        {"id": "q-deep", "doc_id": "log", "question": "Who refuelled the backup generator?",
         "answers": ["Ingrid Olsen"], "evidence": [DEEP], "evidence_offsets": [[deep_start, deep_start + len(DEEP)]]},
    ])
    _write(root / "hotpotqa" / "docs.jsonl", [{"doc_id": d, "title": d, "text": t} for d, t in PARAGRAPHS.items()])
    _write(root / "hotpotqa" / "qa.jsonl", [
        {"id": "q-multi", "doc_id": "p0", "question": "Which glaciers and lighthouses change over time?",
         "answers": ["both"], "evidence": [PARAGRAPHS["p0"], PARAGRAPHS["p3"]], "evidence_doc_ids": ["p0", "p3"]},
    ])
    return root
