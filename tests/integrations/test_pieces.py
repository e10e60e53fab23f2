"""Packing foreign pieces (the core of both plug-ins' packers): budgets, offsets, order, merging."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.errors import BudgetError
from hybridctx.packing.pieces import Piece, pack_pieces
from hybridctx.packing.packer import render
from hybridctx.ingest.segmentation import split_sentences
from hybridctx.packing.tokens import get_counter

DOC = ("Alice was beginning to get very tired. She had peeped into the book her sister was reading. "
       "It had no pictures or conversations in it. So she was considering in her own mind what to do. "
       "Suddenly a White Rabbit with pink eyes ran close by her. There was nothing so very remarkable in that.")


def at(text: str, start: int, end: int, doc_id: str = "doc", score: float | None = None) -> Piece:
    return Piece(text[start:end], doc_id, start, end, score)


def test_located_pieces_come_back_in_document_order_with_exact_offsets() -> None:
    counter = get_counter("cl100k_base")
    s = split_sentences(DOC)
    # Given best first, late in the document first.
    pieces = [at(DOC, s[4][0], s[5][1], score=0.9), at(DOC, s[0][0], s[1][1], score=0.5)]
    packed = pack_pieces(pieces, 500)
    assert [p.sources for p in packed.pieces] == [(1,), (0,)]
    assert [p.start for p in packed.pieces] == sorted(p.start for p in packed.pieces)
    for p in packed.pieces:
        assert p.located and DOC[p.start:p.end] == p.text and not p.trimmed
    assert packed.tokens == counter.count(packed.context) <= 500
    assert packed.context.startswith("[1] doc\n" + DOC[s[0][0]:s[1][1]])


def test_overlapping_pieces_merge_and_no_character_is_packed_twice() -> None:
    s = split_sentences(DOC)
    pieces = [at(DOC, s[1][0], s[3][1], score=0.8), at(DOC, s[0][0], s[2][1], score=0.4)]
    packed = pack_pieces(pieces, 500)
    assert len(packed.pieces) == 1
    (merged,) = packed.pieces
    assert merged.sources == (0, 1) and (merged.start, merged.end) == (s[0][0], s[3][1])
    assert packed.context.count("peeped") == 1


def test_unlocated_pieces_keep_input_order_and_are_selected_by_score() -> None:
    counter = get_counter("cl100k_base")
    texts = ["First piece of text, not very useful.", "Second piece holds the answer.",
             "Third piece is padding padding padding padding."]
    pieces = [Piece(t, score=sc) for t, sc in zip(texts, (0.1, 0.9, 0.5))]
    full = pack_pieces(pieces, 500)
    assert [p.sources[0] for p in full.pieces] == [0, 1, 2]  # input order kept
    assert full.context.splitlines()[0] == "[1] piece 1"
    # Room for about one piece: the best-scored one wins.
    budget = counter.count(render_one("piece 2", texts[1])) + 1
    small = pack_pieces(pieces, budget)
    assert [p.sources for p in small.pieces] == [(1,)] and small.dropped == (0, 2)
    assert small.tokens == counter.count(small.context) <= budget


def render_one(label: str, text: str) -> str:
    from hybridctx.datatypes import Span

    return render([Span(label, 0, len(text), 1.0, 0, text)])


def test_an_over_long_piece_is_cut_to_whole_sentences_from_its_start() -> None:
    counter = get_counter("cl100k_base")
    packed = pack_pieces([Piece(DOC, "doc", 0, len(DOC))], 30, markers=False)
    (piece,) = packed.pieces
    assert piece.trimmed and piece.start == 0 and DOC[: piece.end] == piece.text
    assert piece.end in {end for _, end in split_sentences(DOC)}  # ends at a sentence end
    assert packed.tokens == counter.count(packed.context) <= 30
    assert packed.tokens > 15  # the budget is used, not wasted


def test_a_piece_that_contradicts_its_document_is_packed_on_its_own() -> None:
    s = split_sentences(DOC)
    good = at(DOC, s[0][0], s[2][1])
    liar = Piece("Alice was beginning to get very BORED.", "doc", s[0][0], None)
    packed = pack_pieces([good, liar], 500)
    assert len(packed.pieces) == 2
    assert [p.located for p in packed.pieces] == [True, False]
    assert "BORED" in packed.context and packed.context.count("get very tired") == 1


def test_blank_pieces_are_dropped_and_bad_budgets_refused() -> None:
    packed = pack_pieces([Piece("   \n"), Piece("Real text.")], 100)
    assert packed.dropped == (0,) and [p.text for p in packed.pieces] == ["Real text."]
    with pytest.raises(BudgetError):
        pack_pieces([Piece("x.")], 0)
    with pytest.raises(BudgetError):
        pack_pieces([Piece("x.")], 10, reserve=10)
    assert pack_pieces([], 10).context == ""


@st.composite
def alice_pieces(draw: st.DrawFn, text: str) -> list[Piece]:
    pieces = []
    for _ in range(draw(st.integers(1, 8))):
        start = draw(st.integers(0, len(text) - 2))
        end = draw(st.integers(start + 1, min(len(text), start + 1500)))
        located = draw(st.booleans())
        pieces.append(Piece(text[start:end], "alice" if located else None, start if located else None,
                            end if located else None, draw(st.one_of(st.none(), st.floats(0, 1)))))
    return pieces


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), budget=st.integers(1, 600), markers=st.booleans())
def test_property_fits_the_budget_and_offsets_map_back(alice_text: str, data: st.DataObject, budget: int,
                                                      markers: bool) -> None:
    text = alice_text[:20_000]
    pieces = data.draw(alice_pieces(text))
    packed = pack_pieces(pieces, budget, markers=markers)
    assert packed.tokens == get_counter("cl100k_base").count(packed.context) <= budget
    for p in packed.pieces:
        if p.located:
            assert text[p.start:p.end] == p.text
        else:
            assert pieces[p.sources[0]].text[p.start:p.end] == p.text
    located = [p for p in packed.pieces if p.located]
    assert [p.start for p in located] == sorted(p.start for p in located)
    for a, b in zip(located, located[1:]):
        assert a.end <= b.start  # merged: no character twice
