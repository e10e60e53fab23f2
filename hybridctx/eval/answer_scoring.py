"""Scoring a model's answer against the gold answers: exact match, token F1, the option chosen.

Why apart from :mod:`hybridctx.eval.scoring`: that module judges the *context*
(character ranges, no LLM); this one judges the *answer* a model wrote from it,
by the rules readers of QA papers know:

- SQuAD normalisation (lower case, punctuation and the articles a/an/the
  removed, whitespace collapsed), then exact match and token F1, each the best
  over the gold answers;
- Chinese (any CJK character in the gold or the answer): F1 over characters,
  punctuation and spaces removed, as the CMRC 2018 and DRCD evaluations do;
- multiple choice (L-Eval ``quality``): the option the answer names, by its
  letter ("(B)", "B)", "answer: B") or else the option whose text it matches best;
- a question without an answer (LoCoMo's adversarial category) is answered
  right by a refusal, as in SQuAD 2.0.
"""

from __future__ import annotations

import ast
import json
import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["AnswerScore", "chosen_option", "exact_match", "normalize", "parse_options", "score_answer", "token_f1",
           "tokens"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATIONS = re.compile(r"\[\s*\d+(?:\s*[,\-–]\s*\d+)*\s*\]")  # the span markers ask's prompt asks for
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_LETTER = re.compile(r"\(\s*([A-Z])\s*\)|^\s*([A-Z])\s*[).:\]]|^\s*([A-Z])\s*$|\b(?:answer|option|choice)\s*"
                     r"(?:is\s*)?[:\-]?\s*\(?([A-Z])\b", re.IGNORECASE | re.MULTILINE)


def _strip_punctuation(text: str) -> str:
    return "".join(" " if ch in string.punctuation or unicodedata.category(ch).startswith("P") else ch
                   for ch in text)


def normalize(text: str) -> str:
    """SQuAD normalisation: lower case, no citation markers or punctuation, no articles, single spaces."""
    text = _strip_punctuation(_CITATIONS.sub(" ", text).lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def is_chinese(*texts: str) -> bool:
    return any(_CJK.search(t) for t in texts)


def tokens(text: str, *, chinese: bool = False) -> list[str]:
    """Words of the normalised text, or its characters (spaces left out) for Chinese."""
    norm = normalize(text)
    return [ch for ch in norm if not ch.isspace()] if chinese else norm.split()


def exact_match(answer: str, gold: Sequence[str]) -> float:
    """1.0 when the normalised answer equals a normalised gold answer (spaces ignored for Chinese)."""
    for g in gold:
        chinese = is_chinese(g, answer)
        if tokens(answer, chinese=chinese) == tokens(g, chinese=chinese):
            return 1.0
    return 0.0


def token_f1(answer: str, gold: Sequence[str]) -> float:
    """The best token F1 (character F1 for Chinese) of ``answer`` over ``gold``."""
    best = 0.0
    for g in gold:
        chinese = is_chinese(g, answer)
        pred, ref = tokens(answer, chinese=chinese), tokens(g, chinese=chinese)
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref:
            best = max(best, float(pred == ref))
            continue
        if common:
            precision, recall = common / len(pred), common / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def parse_options(value: Any) -> tuple[str, ...]:
    """The options of a multiple-choice record: a list, or a list written as JSON or Python text."""
    if isinstance(value, str):
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(value)
                break
            except (ValueError, SyntaxError):
                continue
        else:
            return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return ()


def _letter_of(option: str, index: int) -> str:
    match = re.match(r"\s*\(?([A-Z])\)", option)
    return match.group(1) if match else chr(ord("A") + index)


def chosen_option(answer: str, options: Sequence[str]) -> str | None:
    """The letter of the option ``answer`` picks, or ``None`` when it names none."""
    letters = [_letter_of(o, i) for i, o in enumerate(options)]
    for match in _LETTER.finditer(answer):
        letter = next(g for g in match.groups() if g).upper()
        if letter in letters:
            return letter
    texts = [re.sub(r"^\s*\(?[A-Z]\)\s*", "", o) for o in options]
    scores = [token_f1(answer, [t]) for t in texts]
    if scores and max(scores) > 0:
        return letters[scores.index(max(scores))]
    return None


@dataclass(frozen=True)
class AnswerScore:
    """One answer judged.

    Attributes:
        em: exact match (``None`` when the question has no gold answer text).
        f1: token F1 (``None`` likewise).
        choice_correct: whether the option picked is the gold one (``None``
            for a question without options).
        chosen: the letter picked, if any.
    """

    em: float | None
    f1: float | None
    choice_correct: float | None = None
    chosen: str | None = None


def score_answer(
    answer: str,
    gold: Sequence[str],
    *,
    refused: bool,
    options: Sequence[str] = (),
    answer_label: str | None = None,
    unanswerable: bool = False,
) -> AnswerScore:
    """Judge ``answer`` by every rule the question's gold allows.

    A refusal scores 0 on an answerable question and 1 on an unanswerable one.
    """
    if unanswerable:
        return AnswerScore(float(refused), float(refused))
    em = f1 = None
    if gold:
        em, f1 = (0.0, 0.0) if refused else (exact_match(answer, gold), token_f1(answer, gold))
    choice, correct = None, None
    if options and answer_label:
        choice = None if refused else chosen_option(answer, options)
        correct = float(choice == answer_label.strip().upper())
    return AnswerScore(em, f1, correct, choice)
