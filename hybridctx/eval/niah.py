"""Needle in a haystack (Kamradt), scored by what is packed, optionally by an LLM.

Why: "can it find one sentence anywhere in a long document?" is the first
question a long-context method is asked. Here a trial hides needles (see
:mod:`~hybridctx.eval.needles`) at a depth of a haystack cut to a length (see
:mod:`~hybridctx.eval.haystack`), indexes the one document with each method,
retrieves for the needle's question at a token budget, and passes when every
needle sentence lies whole inside the packed ranges (no LLM needed). With an
LLM, the packed context is also put to it with the standard prompt
(:func:`hybridctx.llms.build_messages`) and the answer must contain every
needle's value.

Cost. Each trial is a new document, so indexing it from scratch would encode
the whole haystack per depth (a 1k-128k × 11-depth grid is 2.7M tokens to
encode, many minutes on a CPU). hybridctx runs behind
:class:`~hybridctx.eval.window_cache.CachedWindowEncoder`: window encodings are
cached by a hash of their token ids and sentence ranges, which is exact
(a window's landmark vectors depend on nothing else). A needle changes the
windows around it and, until the greedy window plan falls back in step with
the haystack's (a few to a few dozen windows), those after it; the lengths of
a grid share their prefix, and the copies of a repeated haystack share their
windows. So only the first depth of a length pays for encoding it; the others
encode a small share of its windows, with vectors identical to a plain encode
(measured: docs/benchmarks.md#needle-in-a-haystack and
docs/benchmarks.md#at-scale-1m-tokens-and-2m-chinese-characters).
Tokenising, segmenting, BM25 and the vector table are still rebuilt per
trial. Peers are prepared per trial as they would
be for any document.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from hybridctx.errors import ConfigError
from hybridctx.eval.haystack import Haystack, PlacedNeedle, Unit
from hybridctx.eval.needles import VARIANTS, Variant, make_needles
from hybridctx.eval.niah_report import NIAHResults, Outcome, Trial

__all__ = ["METHODS", "NIAHConfig", "make_methods", "run_niah"]

logger = logging.getLogger(__name__)

#: Method names ``--methods`` accepts.
METHODS = ("hybridctx", "bm25", "truncation", "llamaindex")


@dataclass(frozen=True)
class NIAHConfig:
    """One needle-in-a-haystack grid.

    Attributes:
        lengths: context lengths, in ``unit``.
        depths: needle depths, percent of the length (0 = first sentence, 100 = after the last).
        unit: ``tokens`` (of ``tokenizer``) or ``chars``.
        variant: ``single``, ``multi`` or ``multikey``.
        budget: tokens (of ``tokenizer``) each method may pack.
        tokenizer: the tokenizer of lengths and budget.
        seed: chooses the needles (per repeat) and the distractors' places (per trial).
        needles: facts hidden by ``multi``.
        distractors: other-key needles hidden by ``multikey``.
        repeats: trials per (length, depth), each with other needles.
        limit: run only the first this many trials (lengths, then depths, then repeats).
        language: ``auto`` (from the haystack), ``en`` or ``zh``: which needle templates.
        answer_tokens: longest LLM answer.
    """

    lengths: tuple[int, ...] = (2000, 8000, 32000)
    depths: tuple[float, ...] = tuple(float(d) for d in range(0, 101, 10))
    unit: Unit = "tokens"
    variant: Variant = "single"
    budget: int = 1024
    tokenizer: str = "cl100k_base"
    seed: int = 0
    needles: int = 3
    distractors: int = 3
    repeats: int = 1
    limit: int | None = None
    language: Literal["auto", "en", "zh"] = "auto"
    answer_tokens: int = 64

    def __post_init__(self) -> None:
        if not self.lengths or any(int(n) != n or n < 1 for n in self.lengths):
            raise ConfigError(f"lengths {list(self.lengths)} must be whole numbers >= 1")
        if not self.depths or any(not 0 <= d <= 100 for d in self.depths):
            bad = [d for d in self.depths if not 0 <= d <= 100]
            raise ConfigError(f"depth {bad[0] if bad else '(none)'} is not a percentage between 0 and 100")
        if self.unit not in ("tokens", "chars"):
            raise ConfigError(f"unit '{self.unit}' is not one of tokens, chars")
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant '{self.variant}' is not one of {', '.join(VARIANTS)}")
        if self.language not in ("auto", "en", "zh"):
            raise ConfigError(f"language '{self.language}' is not one of auto, en, zh")
        for name in ("budget", "repeats", "needles", "answer_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} {getattr(self, name)} must be >= 1")
        if self.distractors < 0:
            raise ConfigError(f"distractors {self.distractors} must be >= 0")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit {self.limit} must be >= 1")


def make_methods(
    names: Sequence[str], *, tokenizer: str = "cl100k_base", encoder: Any = None, show_progress: bool | None = None,
) -> list[Any]:
    """The methods to compare, by name (see :data:`METHODS`).

    ``hybridctx`` reads through a :class:`CachedWindowEncoder` around ``encoder``
    (default: the packaged MiniLM); ``bm25`` is BM25 over 256-token chunks,
    ``llamaindex`` dense top-k over 256-token chunks (re-encodes every trial:
    slow past ~32k tokens), ``truncation`` the first tokens.

    Raises:
        ConfigError: an unknown or repeated name (the nearest known one is named).
    """
    import difflib

    out: list[Any] = []
    for name in names:
        if name not in METHODS:
            near = difflib.get_close_matches(name, METHODS, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(f"unknown method '{name}'{hint} Known: {', '.join(METHODS)}")
        if names.count(name) > 1:
            raise ConfigError(f"method '{name}' is given twice; give each once")
        if name == "hybridctx":
            from hybridctx.embeddings import load_encoder
            from hybridctx.eval.hybrid_method import HybridCtxMethod
            from hybridctx.eval.window_cache import CachedWindowEncoder

            base = encoder if encoder is not None else load_encoder()
            cached = CachedWindowEncoder(base, show_progress=show_progress)
            out.append(HybridCtxMethod("hybridctx", encoder=cached, tokenizer=tokenizer, show_progress=False))
        elif name == "bm25":
            from hybridctx.eval.peers import BM25Chunks

            method = BM25Chunks(256, tokenizer=tokenizer, show_progress=False)
            method.name = "bm25"
            out.append(method)
        elif name == "truncation":
            from hybridctx.eval.peers import Truncation

            out.append(Truncation(tokenizer=tokenizer))
        else:
            from hybridctx.eval.peers import LlamaIndexChunks

            method = LlamaIndexChunks(256, tokenizer=tokenizer, show_progress=False)
            method.name = "llamaindex"
            out.append(method)
    return out


def run_niah(
    haystack: Haystack,
    config: NIAHConfig,
    methods: Sequence[Any],
    *,
    llm: Any = None,
    show_progress: bool | None = None,
) -> NIAHResults:
    """Run the grid: every (length, depth, repeat) trial with every method.

    Args:
        haystack: the text to hide needles in.
        config: the grid.
        methods: retrieval methods (``prepare(docs)``, ``retrieve(query, doc_ids, budget)``).
        llm: when given, each packed context is also answered by it.
        show_progress: tqdm bar over trials (``None``: on a terminal).

    Raises:
        ConfigError: two methods share a name.
        BudgetError, InputError: a method packed too much or malformed ranges.
    """
    from tqdm.auto import tqdm

    from hybridctx.eval.scoring import check_budget
    from hybridctx.packing.tokens import get_counter

    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ConfigError(f"method names must differ, got {names}")
    counter = get_counter(config.tokenizer)
    language = haystack.language if config.language == "auto" else config.language
    make_needles(config.variant, language, random.Random(0), needles=config.needles,
                 distractors=config.distractors)  # bad counts fail now, not after the first trial
    grid = [(n, d, r) for n in config.lengths for d in config.depths for r in range(config.repeats)]
    grid = grid[: config.limit] if config.limit else grid
    started = time.perf_counter()
    trials: list[Trial] = []
    contexts: dict[int, Any] = {}
    passes: dict[str, int] = defaultdict(int)
    bar = tqdm(grid, desc="niah", unit="trial", disable=None if show_progress is None else not show_progress)
    for length, depth, repeat in bar:
        if length not in contexts:
            contexts.clear()  # one length in memory at a time
            contexts[length] = haystack.cut(length, config.unit, counter)
        ctx = contexts[length]
        needle_set = make_needles(config.variant, language, random.Random(f"{config.seed}:{repeat}"),
                                  needles=config.needles, distractors=config.distractors)
        doc, placed = ctx.insert(_placements(config, needle_set.needles, depth, length, repeat))
        doc_id = f"niah-{length}-{depth:g}-{repeat}"
        docs = {doc_id: doc}
        outcomes = []
        for method in methods:
            t0 = time.perf_counter()
            method.prepare(docs)
            t1 = time.perf_counter()
            ranges = method.retrieve(needle_set.question, [doc_id], config.budget)
            t2 = time.perf_counter()
            tokens = check_budget(ranges, docs, config.budget, counter, method=method.name)
            outcome = _score(method.name, ranges, placed, tokens, t1 - t0, (t2 - t1) * 1000)
            if llm is not None:
                outcome = _ask(llm, needle_set.question, doc, ranges, placed, outcome, config.answer_tokens)
            passes[method.name] += outcome.passed
            outcomes.append(outcome)
        trials.append(Trial(length, float(depth), repeat, doc_id, len(doc), ctx.size, needle_set.question,
                            placed, tuple(outcomes)))
        bar.set_postfix({n: f"{passes[n]}/{len(trials)}" for n in names})
    bar.close()
    sizes = {t.length: t.haystack_units for t in trials}
    encoder_stats = {}
    for method in methods:
        enc = getattr(method, "_encoder", None)
        if enc is not None and hasattr(enc, "stats"):
            encoder_stats[method.name] = enc.stats()
    info = {"source": haystack.source, "files": len(haystack.files), "chars": len(haystack.text),
            "sentences": len(haystack.sentences), "language": haystack.language, "needle_language": language}
    return NIAHResults(config, info, tuple(names), tuple(trials), time.perf_counter() - started,
                       sizes, encoder_stats, getattr(llm, "name", None) if llm is not None else None)


def _placements(config: NIAHConfig, needles: Sequence[Any], depth: float, length: int, repeat: int) -> list:
    """Depths of each needle: multi spreads them from ``depth`` to the end (Kamradt); multikey's
    distractors go to seeded random depths."""
    targets = [n for n in needles if n.role == "needle"]
    others = [n for n in needles if n.role == "distractor"]
    step = (100.0 - depth) / len(targets)
    out = [(depth + k * step, n) for k, n in enumerate(targets)]
    rng = random.Random(f"{config.seed}:{repeat}:{length}:{depth:g}")
    out += [(round(rng.uniform(0.0, 100.0), 1), n) for n in others]
    return out


def _score(name: str, ranges: Sequence[tuple[str, int, int]], placed: Sequence[PlacedNeedle], tokens: int,
           prepare_s: float, retrieve_ms: float) -> Outcome:
    from hybridctx.eval.scoring import covered_chars, merge_ranges

    merged = merge_ranges((s, e) for _, s, e in ranges)
    inside = [covered_chars(p.start, p.end, merged) == p.end - p.start for p in placed]
    found = sum(ok for ok, p in zip(inside, placed) if p.needle.role == "needle")
    targets = sum(p.needle.role == "needle" for p in placed)
    packed_distractors = sum(ok for ok, p in zip(inside, placed) if p.needle.role == "distractor")
    return Outcome(name, found == targets, found, targets, packed_distractors, len(placed) - targets,
                   tokens, prepare_s, retrieve_ms)


def _ask(llm: Any, question: str, doc: str, ranges: Sequence[tuple[str, int, int]],
         placed: Sequence[PlacedNeedle], outcome: Outcome, max_tokens: int) -> Outcome:
    """Put the packed context to the LLM; it passes when its answer holds every needle's value."""
    from dataclasses import replace

    from hybridctx.datatypes import Span
    from hybridctx.llms import build_messages
    from hybridctx.packing.packer import render

    spans = [Span(d, s, e, 0.0, 0, doc[s:e]) for d, s, e in sorted(ranges, key=lambda r: r[1])]
    completion = llm.generate(build_messages(question, render(spans)), max_tokens=max_tokens, temperature=0.0)
    answer = _normal(completion.text)
    ok = all(_normal(p.needle.value) in answer for p in placed if p.needle.role == "needle")
    return replace(outcome, answer=completion.text, llm_passed=ok, llm_seconds=completion.seconds)


def _normal(text: str) -> str:
    """Casefolded, single-spaced, digit groups joined (``4,830,127`` → ``4830127``)."""
    return re.sub(r"(?<=\d)[,\s](?=\d)", "", " ".join(text.casefold().split()))
