"""How well sentence boundaries line up with gold evidence, and how fast they come.

Why: retrieval returns runs of whole sentences, so a gold evidence range that
starts or ends inside a sentence can only be packed with extra text around it.
For every dataset in ``../shared/data`` (or ``--data``) this script reports

* ``aligned``: the fraction of gold evidence ranges (whitespace trimmed) whose
  start is a sentence start and whose end is a sentence end (evidence may span
  several whole sentences), with the start and end fractions apart;
* ``snug``: the fraction whose smallest run of whole sentences adds at most
  8 characters plus 10% of the evidence length around it (a list label such as
  ``4.14`` or a closing quote the gold leaves out);
* the mean sentence length in characters;
* the throughput of :func:`hybridctx.ingest.segmentation.split_sentences` in MB/s
  (MB of UTF-8 text; one pass, 2-core machine).

Run: ``.venv/bin/python benchmarks/segmentation_alignment.py [--misses N] [--out DIR]``.
It prints a markdown table (and, with ``--misses``, sample misaligned evidence);
``--out DIR`` also writes every row to ``DIR/segmentation_alignment.json`` with the
command line and commit.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import add_data_argument, add_out_argument, write_result
from hybridctx.ingest.segmentation import split_sentences

# "snug": the whole sentences holding the evidence add at most this much text around it.
SNUG_CHARS = 8
SNUG_FRACTION = 0.1

# (row name, directory, docs file, qa file or None, task filter or None)
DATASETS: list[tuple[str, str, str, str | None, str | None]] = [
    ("leval/legal_contract_qa", "leval", "docs.jsonl", "qa.jsonl", "legal_contract_qa"),
    ("leval/topic_retrieval", "leval", "docs.jsonl", "qa.jsonl", "topic_retrieval_longchat"),
    ("leval (all docs)", "leval", "docs.jsonl", None, None),
    ("locomo", "locomo", "docs.jsonl", "qa.jsonl", None),
    ("hotpotqa (paragraphs)", "hotpotqa", "docs.jsonl", "qa.jsonl", None),
    ("drcd", "drcd", "docs.jsonl", "qa.jsonl", None),
    ("drcd/haystack", "drcd", "haystack_docs.jsonl", "haystack_qa.jsonl", None),
    ("cmrc2018", "cmrc2018", "docs.jsonl", "qa.jsonl", None),
    ("cmrc2018/haystack", "cmrc2018", "haystack_docs.jsonl", "haystack_qa.jsonl", None),
    ("longbench_zh", "longbench_zh", "docs.jsonl", "qa.jsonl", None),
    ("pg_essays", "pg_essays", "docs.jsonl", None, None),
    ("zh_novels", "zh_novels", "docs.jsonl", None, None),
]


@dataclass
class Row:
    """Measurements for one dataset."""

    name: str
    docs: int = 0
    megabytes: float = 0.0
    seconds: float = 0.0
    sentences: int = 0
    sentence_chars: int = 0
    evidence: int = 0
    start_ok: int = 0
    end_ok: int = 0
    both_ok: int = 0
    snug: int = 0
    misses: list[str] = field(default_factory=list)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _evidence_ranges(record: dict[str, Any], texts: dict[str, str]) -> Iterator[tuple[str, int, int]]:
    offsets = record.get("evidence_offsets") or []
    if offsets:
        for start, end in offsets:
            yield record["doc_id"], start, end
        return
    # hotpotqa: the gold evidence is a whole paragraph document.
    for doc_id in record.get("evidence_doc_ids") or []:
        if doc_id in texts:
            yield doc_id, 0, len(texts[doc_id])


def measure(name: str, root: Path, docs_file: str, qa_file: str | None, task: str | None) -> Row:
    """Segment one dataset's documents and score its gold evidence."""
    row = Row(name)
    texts = {r["doc_id"]: r["text"] for r in _read_jsonl(root / docs_file)}
    spans: dict[str, list[tuple[int, int]]] = {}
    begin = time.perf_counter()
    for doc_id, text in texts.items():
        spans[doc_id] = split_sentences(text)
    row.seconds = time.perf_counter() - begin
    row.docs = len(texts)
    row.megabytes = sum(len(t.encode("utf-8")) for t in texts.values()) / 1e6
    for doc_spans in spans.values():
        row.sentences += len(doc_spans)
        row.sentence_chars += sum(end - start for start, end in doc_spans)
    if qa_file is None:
        return row
    starts = {d: {s for s, _ in sp} for d, sp in spans.items()}
    ends = {d: {e for _, e in sp} for d, sp in spans.items()}
    start_list = {d: [s for s, _ in sp] for d, sp in spans.items()}
    end_list = {d: [e for _, e in sp] for d, sp in spans.items()}
    for record in _read_jsonl(root / qa_file):
        if task is not None and record.get("task") != task:
            continue
        for doc_id, start, end in _evidence_ranges(record, texts):
            text = texts[doc_id]
            start, end = _strip(text, start, end)
            if start >= end:
                continue
            row.evidence += 1
            good_start = start in starts[doc_id]
            good_end = end in ends[doc_id]
            row.start_ok += good_start
            row.end_ok += good_end
            row.both_ok += good_start and good_end
            # The smallest run of whole sentences that holds the evidence.
            first = bisect_right(start_list[doc_id], start) - 1
            last = bisect_left(end_list[doc_id], end)
            if first >= 0 and last < len(end_list[doc_id]):
                extra = (start - start_list[doc_id][first]) + (end_list[doc_id][last] - end)
                row.snug += extra <= SNUG_CHARS + SNUG_FRACTION * (end - start)
            if not (good_start and good_end):
                row.misses.append(
                    f"{doc_id} [{start}:{end}] start={'ok' if good_start else 'MISS'} "
                    f"end={'ok' if good_end else 'MISS'}\n"
                    f"  before: {text[max(0, start - 60) : start]!r}\n"
                    f"  gold:   {text[start:end][:240]!r}\n"
                    f"  after:  {text[end : end + 60]!r}"
                )
    return row


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def render(rows: list[Row]) -> str:
    """The markdown table of all rows."""
    lines = [
        "| dataset | docs | MB | sentences | mean chars | evidence "
        "| aligned | start ok | end ok | snug | MB/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mean = r.sentence_chars / r.sentences if r.sentences else 0.0
        speed = r.megabytes / r.seconds if r.seconds else 0.0
        lines.append(
            f"| {r.name} | {r.docs} | {r.megabytes:.2f} | {r.sentences} | {mean:.0f} | "
            f"{r.evidence or '–'} | {_pct(r.both_ok, r.evidence)} | {_pct(r.start_ok, r.evidence)} | "
            f"{_pct(r.end_ok, r.evidence)} | {_pct(r.snug, r.evidence)} | {speed:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--only", nargs="*", help="row names to run (prefix match)")
    parser.add_argument(
        "--misses", type=int, default=0, help="print N sample misaligned evidence per dataset"
    )
    add_out_argument(parser)
    args = parser.parse_args(argv)
    rows = []
    for name, directory, docs_file, qa_file, task in DATASETS:
        if args.only and not any(name.startswith(prefix) for prefix in args.only):
            continue
        root = args.data / directory
        if not (root / docs_file).exists():
            continue
        rows.append(measure(name, root, docs_file, qa_file, task))
    print(render(rows))
    if args.out is not None:
        write_result(args.out, "segmentation_alignment.json",
                     {"rows": [{k: v for k, v in asdict(r).items() if k != "misses"} for r in rows]}, argv)
    if args.misses:
        rng = random.Random(0)
        for r in rows:
            if r.misses:
                print(f"\n### {r.name}: {len(r.misses)} misaligned")
                for miss in rng.sample(r.misses, min(args.misses, len(r.misses))):
                    print(miss)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
