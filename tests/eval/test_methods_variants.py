"""The hx-* tuning variants of hybridctx/eval/methods.py: each differs from today's defaults and is cited.

Why: a variant equal to the defaults scores the same as ``hybridctx`` under another name, and one no
doc table cites is a number nobody can look up; both only grow the list a reader must scan.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from hybridctx.embeddings.config import EncoderConfig
from hybridctx.eval.methods import ENCODERS, RETRIEVAL, method_names
from hybridctx.retrieval.retriever import RetrievalConfig

ROOT = Path(__file__).resolve().parents[2]
BASE_ENCODER = "window"  # the default encoder itself: the base every retrieval variant runs on
MINILM_WINDOW = 256  # the packaged model's trained length: window=None resolves to it


def _docs_text() -> str:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def _cited(name: str, text: str) -> bool:
    """``hx-NAME`` in a table or command, or ``NAME`` in a ``benchmarks/eval_variants.py --variants`` list."""
    if re.search(rf"hx-{re.escape(name)}(?![\w-])", text):
        return True
    for match in re.finditer(r"eval_variants\.py[^`]*?--variants((?:\s+[\w-]+)+)", text):
        if name in match.group(1).split():
            return True
    return False


def _resolved(config: EncoderConfig) -> EncoderConfig:
    """Settings whose ``None`` means a computed default, written out (overlap None = window/8)."""
    window = config.window or MINILM_WINDOW
    return replace(config, window=window, overlap=window // 8 if config.overlap is None else config.overlap)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoder_variant_differs_from_the_default_and_is_cited(name: str) -> None:
    config = _resolved(EncoderConfig(**ENCODERS[name]))
    if name == BASE_ENCODER:
        assert config == _resolved(EncoderConfig()), "the base variant must be the default encoder"
    else:
        assert config != _resolved(EncoderConfig()), f"hx-{name} equals the default encoder"
    assert _cited(name, _docs_text()), f"no doc cites hx-{name}"


@pytest.mark.parametrize("name", sorted(RETRIEVAL))
def test_retrieval_variant_differs_from_the_default_and_is_cited(name: str) -> None:
    assert replace(RetrievalConfig(), **RETRIEVAL[name]) != RetrievalConfig(), f"hx-{name} equals the defaults"
    assert _cited(name, _docs_text()), f"no doc cites hx-{name}"


def test_every_variant_is_a_registered_method() -> None:
    names = set(method_names())
    assert {f"hx-{n}" for n in [*ENCODERS, *RETRIEVAL]} <= names
    assert not set(ENCODERS) & set(RETRIEVAL), "a name must say which table it comes from"


def test_the_citation_check_can_fail() -> None:
    text = "see `benchmarks/eval_variants.py --variants window-ov64 window-ov16 --dense-too` and hx-pos4"
    assert _cited("window-ov16", text) and _cited("pos4", text)
    assert not _cited("pos", text) and not _cited("window-ov32", text)
