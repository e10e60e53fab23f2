"""Header markers (issue 13.2(d)): ``[k] doc_id § header`` lines, each span's own, inside the budget.

The budget property over random headers lives in tests/test_packing.py
(``test_packed_context_never_exceeds_budget``); these are the examples and the retriever's side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from hybridctx.datatypes import Document, Span
from hybridctx.packing.packer import SpanCandidate, pack, render
from hybridctx.packing.tokens import get_counter
from hybridctx.retrieval.retriever import RetrievalConfig, Retriever, short_header


def _doc(sentences: list[str]) -> tuple[str, list[tuple[int, int]]]:
    ranges, at = [], 0
    for s in sentences:
        ranges.append((at, at + len(s)))
        at += len(s) + 1
    return " ".join(sentences), ranges


def test_a_trimmed_span_is_marked_with_the_section_of_its_own_first_sentence() -> None:
    counter = get_counter("cl100k_base")
    text, ranges = _doc([f"Sentence {i} says something about the deliveries in clause {i}." for i in range(12)])
    sections = {start: ("11. PAYMENT" if i < 6 else "12. GOVERNING LAW") for i, (start, _) in enumerate(ranges)}
    asked: list[tuple[str, tuple[int, ...]]] = []

    def headers(doc_id: str, offsets: Sequence[int]) -> list[str]:
        asked.append((doc_id, tuple(offsets)))
        return [sections[at] for at in offsets]

    whole = SpanCandidate("contract.pdf", 1.0, tuple(ranges), anchor=8)
    packed = pack([whole], {"contract.pdf": text}, 1000, counter, headers=headers)
    assert packed.context.startswith("[1] contract.pdf § 11. PAYMENT\n")
    # Only the sentences that can start the span (up to the anchor) are asked about.
    assert asked == [("contract.pdf", tuple(s for s, _ in ranges[:9]))]
    # At a budget that keeps only the anchor's neighbours, the span starts in section 12.
    small = pack([whole], {"contract.pdf": text}, 40, counter, headers=headers)
    (span,) = small.spans
    assert span.trimmed and span.start >= ranges[6][0]
    assert span.header == "12. GOVERNING LAW"
    assert small.context.startswith("[1] contract.pdf § 12. GOVERNING LAW\n")
    assert small.tokens == counter.count(small.context) <= 40
    assert render(small.spans) == small.context


def test_header_markers_are_paid_for_out_of_the_budget() -> None:
    counter = get_counter("cl100k_base")
    text, ranges = _doc([f"Point {i} is a short sentence of evidence." for i in range(40)])
    long_header = "Schedule B › " + "Warranties Representations and Covenants " * 2
    candidates = [SpanCandidate("d", 1.0 - i / 100, (ranges[i],), anchor=0) for i in range(0, 40, 2)]

    def headers(doc_id: str, offsets: Sequence[int]) -> list[str]:
        return [long_header] * len(offsets)

    for budget in (30, 64, 120, 300):
        plain = pack(candidates, {"d": text}, budget, counter)
        headed = pack(candidates, {"d": text}, budget, counter, headers=headers)
        assert headed.tokens == counter.count(headed.context) <= budget
        # The longer markers leave room for fewer spans, never for a context over the budget.
        assert len(headed.spans) <= len(plain.spans)
        assert all(line.endswith(long_header) for line in headed.context.splitlines() if line.startswith("["))
    # No header ('') and no lookup render alike: ``[k] doc_id``.
    none = pack(candidates, {"d": text}, 120, counter, headers=lambda d, offsets: [""] * len(offsets))
    assert none.context == pack(candidates, {"d": text}, 120, counter).context


def test_render_and_json_carry_the_header() -> None:
    spans = (Span("a.md", 0, 3, 1.0, 1, "one", header="Intro › Scope"), Span("b.md", 0, 3, 0.5, 1, "two"))
    assert render(spans) == "[1] a.md § Intro › Scope\none\n\n[2] b.md\ntwo"
    assert render(spans, markers=False) == "one\n\ntwo"
    assert spans[0].to_json()["header"] == "Intro › Scope"
    assert "header" not in spans[1].to_json()  # the --json contract gains a key only when there is one
    # A line break in a header cannot split the marker line.
    broken = Span("a.md", 0, 3, 1.0, 1, "one", header="Part I\nScope")
    assert render((broken,)) == "[1] a.md § Part I Scope\none"


@pytest.mark.parametrize(("path", "doc_id", "expected"), [
    (("Supply Agreement", "12. GOVERNING LAW"), "supply.txt", "Supply Agreement › 12. GOVERNING LAW"),
    (("Supply Agreement", "ARTICLE IV", "4.2 Payment"), "supply.txt", "ARTICLE IV › 4.2 Payment"),
    (("locomo-conv43", "Session 4 (4:17 pm on 2 August, 2023)"), "locomo-conv43", "Session 4 (4:17 pm on 2 August, 2023)"),
    (("locomo-conv43",), "locomo-conv43", ""),  # a title that only repeats the id says nothing
    ((), "x", ""),
    (("A very long agreement title that goes on and on", "12. GOVERNING  LAW\n"), "x", "12. GOVERNING LAW"),
    (("T", "Word " * 20), "x", "Word Word Word Word Word Word Word Word Word Word Word…"),
])
def test_short_header(path: tuple[str, ...], doc_id: str, expected: str) -> None:
    short = short_header(path, doc_id)
    assert short == expected
    assert len(short) <= 60 and "\n" not in short


def test_the_setting_is_off_by_default() -> None:
    assert RetrievalConfig().header_markers is False


CONTRACT = (
    "SUPPLY AGREEMENT\n\n1. DELIVERY\n\n"
    + " ".join(f"The supplier delivers batch {i} to the buyer's warehouse." for i in range(30))
    + "\n\n12. GOVERNING LAW\n\nThis Agreement shall be construed under the statutes of Delaware. "
    "Disputes go to the courts of Wilmington.\n"
)


@pytest.fixture(scope="module")
def contract_store(encoder):
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents

    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents([Document("supply.txt", CONTRACT)], store, encoder, show_progress=False)
    return store


def test_the_retriever_marks_spans_with_their_section(contract_store, encoder) -> None:
    question = "Which state's statutes is the agreement construed under?"
    plain = Retriever(contract_store, encoder).retrieve(question, 120)
    headed = Retriever(contract_store, encoder, RetrievalConfig(header_markers=True)).retrieve(question, 120)
    assert "§" not in plain.context and all(s.header == "" for s in plain.spans)
    law = next(s for s in headed.spans if "Delaware" in s.text)
    assert law.header == "SUPPLY AGREEMENT › 12. GOVERNING LAW"
    assert f"] supply.txt § SUPPLY AGREEMENT › 12. GOVERNING LAW\n{law.text}" in headed.context
    assert headed.tokens == get_counter("cl100k_base").count(headed.context) <= 120
    assert json.loads(json.dumps(headed.to_json()))["spans"][headed.spans.index(law)]["header"] == law.header
    # Without markers there is nothing to carry a header.
    bare = Retriever(contract_store, encoder, RetrievalConfig(header_markers=True, markers=False)).retrieve(question, 120)
    assert "§" not in bare.context and all(s.header == "" for s in bare.spans)


def test_a_store_without_structure_gives_plain_markers(contract_store, encoder) -> None:
    class NoStructure:
        def __init__(self, store):
            self._store = store

        def __getattr__(self, name):
            if name == "structure":  # an index written before the structure pass
                raise AttributeError(name)
            return getattr(self._store, name)

    retriever = Retriever(NoStructure(contract_store), encoder, RetrievalConfig(header_markers=True, header_weight=0.0))
    packed = retriever.retrieve("governing law Delaware", 120)
    assert packed.spans and "§" not in packed.context
