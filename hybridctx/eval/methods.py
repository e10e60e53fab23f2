"""Retrieval methods by name: hybridctx, its variants and the peers, for the CLI and benchmarks.

Why: ``hybridctx eval qa --methods ...``, ``benchmarks/eval_peers.py`` and
``benchmarks/eval_variants.py`` must build the very same method for the same
name, or their numbers cannot be compared. This module is that one place: a
registry of names (those of docs/benchmarks.md, plus short aliases), the
hybridctx variants whose rows the docs cite, and :func:`register_method` for a
method of one's own (a test's oracle, a new peer).

hybridctx methods that share encoder settings share one encoder object, and so
one index: comparing retrieval settings costs no re-encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

from hybridctx.errors import ConfigError
from hybridctx.config.settings import did_you_mean
from hybridctx.retrieval.spans import GrowthRule

if TYPE_CHECKING:  # pragma: no cover
    from hybridctx.eval.hybrid_method import HybridCtxMethod
    from hybridctx.eval.peers import RetrievalMethod
    from hybridctx.retrieval.retriever import RetrievalConfig

__all__ = [
    "ALIASES",
    "DEFAULT_METHODS",
    "ENCODERS",
    "RETRIEVAL",
    "HybridSpec",
    "MethodOptions",
    "build_methods",
    "canonical_name",
    "method_names",
    "register_method",
    "variant_methods",
]

# Variants kept are those that differ from today's defaults (EncoderConfig, RetrievalConfig) and that a
# table in docs/ cites by name, so every cited number can be rerun; the tuning variants that became the
# defaults, or that no table cites, were removed (tests/eval/test_methods_variants.py keeps it so).

# Encoder variants: each needs its own encoding pass. "window" is the default encoder itself: the base
# the retrieval variants run on (docs/encoders.md, docs/benchmarks.md cite it as hx-window).
ENCODERS: dict[str, dict[str, Any]] = {
    "isolated": {"context": "isolated"},
    "window": {"context": "window"},
    # Rows measured before windows ended at their last whole sentence keep the old ends ("length"),
    # so that each cited row reruns as it was measured.
    "window-lengthend": {"context": "window", "window_end": "length"},  # the default before session 7
    "window512": {"context": "window", "window": 512, "overlap": 128, "window_end": "length"},
    "window-ov16": {"context": "window", "overlap": 16, "window_end": "length"},
    "window-ov48": {"context": "window", "overlap": 48, "window_end": "length"},
    "window-ov64": {"context": "window", "overlap": 64, "window_end": "length"},  # the default before overlap 32
    # Issue 12.4: with windows ended at a sentence, smaller overlaps read fewer tokens still.
    "trim-ov24": {"context": "window", "overlap": 24},
    "trim-ov16": {"context": "window", "overlap": 16},
    "mix": {"context": "mix", "mix_weight": 0.5},
    # Same document vectors (query_runtime is not part of the index identity): queries by PyTorch.
    "window-torchq": {"context": "window", "query_runtime": "torch"},
    # Issue 13.2(b): a window under an out-of-window heading reads its header path first (16 tokens at most).
    "hdrctx16": {"context": "window", "header_prefix_tokens": 16, "window_end": "length"},
    "hdrctx32": {"context": "window", "header_prefix_tokens": 32, "window_end": "length"},
}
# The second hop inside one document too, as the hop variants were first measured.
_INSIDE: dict[str, Any] = {"second_hop_across_documents": False}
# Retrieval variants on the default encoder: they share its index.
RETRIEVAL: dict[str, dict[str, Any]] = {
    "dense15": {"dense_weight": 1.5},
    "dense2": {"dense_weight": 2.0},
    # Fixed counts at every budget (no growth with the budget), as first measured.
    "cand-fixed": {"candidates_per_ktoken": 0.0},
    "pos0": {"position_weight": 0.0},
    "pos1": {"position_weight": 1.0},
    "pos4": {"position_weight": 4.0},
    "nomarkers": {"markers": False},
    # Issue 13: BM25 over each landmark's header path as a second field (default weight 2).
    "hdr0": {"header_weight": 0.0},
    "hdr05": {"header_weight": 0.5},
    "hdr1": {"header_weight": 1.0},
    # Issue 13: hits under the date, speaker or section a question names are boosted.
    "hint1": {"hint_weight": 1.0},
    "hint2": {"hint_weight": 2.0},
    # Issue 13.2(d): each marker line names its span's section ("[3] doc § 12. GOVERNING LAW").
    "hdrmarks": {"header_markers": True},
    # Issue 14: fewer, longer passages at the same budget: each hit grows 6 sentences back and 5
    # forward across paragraph breaks (~12 sentences a span instead of ~5).
    "passages": {"growth": GrowthRule(back=6, forward=5, within_paragraph=False)},
    # Issue 13.4: a second search with the question plus the best first-hop passage, also inside one
    # document (as first measured; the default hops only across documents).
    "hop025": {"second_hop_weight": 0.25, **_INSIDE},
    "hop05": {"second_hop_weight": 0.5, **_INSIDE},
    "hop1": {"second_hop_weight": 1.0, **_INSIDE},
    "hop1-dense": {"second_hop_weight": 1.0, "second_hop_searches": ("dense",), **_INSIDE},
    "hop1-lex": {"second_hop_weight": 1.0, "second_hop_searches": ("lexical",), **_INSIDE},
    # ... only at budgets of 2k and more (measured: they lose at 2k, gain 1-2 points at locomo@4k).
    "hop025-2k": {"second_hop_weight": 0.25, "second_hop_min_budget": 2048, **_INSIDE},
    "hop05-2k": {"second_hop_weight": 0.5, "second_hop_min_budget": 2048, **_INSIDE},
    "hop1-lex-2k": {"second_hop_weight": 1.0, "second_hop_searches": ("lexical",), "second_hop_min_budget": 2048, **_INSIDE},
    # Convex score fusion (min-max normalised dense and BM25 scores) instead of RRF, dense share 0.3/0.5/0.7.
    "cc03": {"fusion": "convex", "convex_dense_share": 0.3},
    "cc05": {"fusion": "convex", "convex_dense_share": 0.5},
    "cc07": {"fusion": "convex", "convex_dense_share": 0.7},
    # RRF's damping constant below the default 20: the top ranks of each search count for more.
    "rrf5": {"rrf_k": 5.0},
    "rrf10": {"rrf_k": 10.0},
    # BM25 over the passage each landmark ends as one more ranking (default: weight 0.25, 4 sentences,
    # not past a blank line); off, and the alternatives measured against it.
    "psg0": {"passage_weight": 0.0},
    "psg05-doc": {"passage_weight": 0.5, "passage_within": "document"},
    "psg1-doc": {"passage_weight": 1.0, "passage_within": "document"},
    "psg1-doc-t128": {"passage_weight": 1.0, "passage_within": "document", "passage_sentences": 8,
                      "passage_tokens": 128},
    "psg05-sec": {"passage_weight": 0.5, "passage_within": "section"},
    "psg0125": {"passage_weight": 0.125},
    "psg05": {"passage_weight": 0.5},
    "psg1": {"passage_weight": 1.0},
    # Issue 13.4: the second hop only for a search that spans several documents (the default since
    # session 14 is weight 0.5 so; nohop: the default before).
    "nohop": {"second_hop_weight": 0.0},
    "hop025-docs": {"second_hop_weight": 0.25, "second_hop_across_documents": True},
    "hop075-docs": {"second_hop_weight": 0.75, "second_hop_across_documents": True},
    "hop1-docs": {"second_hop_weight": 1.0, "second_hop_across_documents": True},
    "hop1-dense-docs": {"second_hop_weight": 1.0, "second_hop_searches": ("dense",),
                        "second_hop_across_documents": True},
    # Span caps (trimmed around the anchor) so a long merged span does not crowd out the next
    # candidates: the default is 384 tokens or a quarter of the budget, the larger (session 13).
    # cap*: a share of the budget only; tok*: tokens only; grow512: 512 tokens or a quarter;
    # sup02 scores a merged span by its other hits too (docs/benchmarks.md).
    "cap025": {"max_span_share": 0.25, "max_span_tokens": None},
    "cap05": {"max_span_share": 0.5, "max_span_tokens": None},
    "sup02": {"growth": GrowthRule(support=0.2), "max_span_share": None, "max_span_tokens": None},
    "tok384": {"max_span_tokens": 384, "max_span_share": None},
    "tok512": {"max_span_tokens": 512, "max_span_share": None},
    "tok768": {"max_span_tokens": 768, "max_span_share": None},
    "grow512": {"max_span_tokens": 512},
    # The dense ranking dropped above 50% unknown characters in the query (before session 13; now 20%):
    # MiniLM's vocabulary knows about half the characters of many Chinese questions.
    "unread05": {"unreadable_query_ratio": 0.5},
    "nocap-unread05": {"unreadable_query_ratio": 0.5, "max_span_share": None, "max_span_tokens": None},  # all before
}


@dataclass(frozen=True)
class MethodOptions:
    """What every method is built with.

    Attributes:
        tokenizer: the tokenizer budgets are counted in.
        encoder: encoder model (name or path) for hybridctx and the dense
            peers alike; ``None`` is the packaged all-MiniLM-L6-v2.
        device: encoder device (``None``: automatic).
        cache_dir: where hybridctx keeps built indexes for later runs.
        show_progress: progress bars (``None``: on a terminal).
    """

    tokenizer: str = "cl100k_base"
    encoder: str | None = None
    device: str | None = None
    cache_dir: Path | None = None
    show_progress: bool | None = None


@dataclass(frozen=True)
class HybridSpec:
    """A hybridctx method: encoder settings and changes to the default ``RetrievalConfig``."""

    encoder: Mapping[str, Any] = field(default_factory=dict)
    changes: Mapping[str, Any] = field(default_factory=dict)


MethodFactory = Callable[[MethodOptions], "RetrievalMethod"]
_Entry = Union[HybridSpec, MethodFactory]


def _peer(kind: str, size: int) -> MethodFactory:
    def build(o: MethodOptions) -> RetrievalMethod:
        from hybridctx.eval import peers

        dense = dict(encoder=o.encoder, device=o.device, tokenizer=o.tokenizer, show_progress=o.show_progress)
        if kind == "chunks":
            return peers.LlamaIndexChunks(size, **dense)
        if kind == "window":
            return peers.LlamaIndexSentenceWindow(size, **dense)
        if kind == "bm25":
            return peers.BM25Chunks(size, tokenizer=o.tokenizer, show_progress=o.show_progress)
        return peers.Truncation(tokenizer=o.tokenizer)

    return build


_REGISTRY: dict[str, _Entry] = {
    "hybridctx": HybridSpec(),
    "hybridctx-dense": HybridSpec(changes={"mode": "dense"}),
    "hybridctx-lexical": HybridSpec(changes={"mode": "lexical"}),
    "llamaindex-chunks-256": _peer("chunks", 256),
    "llamaindex-chunks-512": _peer("chunks", 512),
    "llamaindex-window-3": _peer("window", 3),
    "bm25-chunks-256": _peer("bm25", 256),
    "truncation": _peer("truncation", 0),
}
_REGISTRY.update({f"hx-{name}": HybridSpec(encoder=spec) for name, spec in ENCODERS.items()})
_REGISTRY.update({f"hx-{name}": HybridSpec(encoder=ENCODERS["window"], changes=spec)
                  for name, spec in RETRIEVAL.items()})

ALIASES: dict[str, str] = {
    "llamaindex-256": "llamaindex-chunks-256",
    "llamaindex-512": "llamaindex-chunks-512",
    "sentence-window": "llamaindex-window-3",
    "bm25-256": "bm25-chunks-256",
    "hybridctx-bm25": "hybridctx-lexical",
}
DEFAULT_METHODS = ("hybridctx", "llamaindex-chunks-256", "llamaindex-chunks-512", "llamaindex-window-3",
                   "bm25-chunks-256", "truncation")


def register_method(name: str, factory: MethodFactory | HybridSpec, *, replace: bool = False) -> None:
    """Make ``name`` buildable by :func:`build_methods` (and ``hybridctx eval qa --methods``).

    Args:
        name: the method's name; the built method's ``name`` must equal it.
        factory: ``MethodOptions -> RetrievalMethod``, or a :class:`HybridSpec`.
        replace: allow replacing a registered name.

    Raises:
        ConfigError: the name is taken (or is an alias) and ``replace`` is false.
    """
    if not replace and (name in _REGISTRY or name in ALIASES):
        raise ConfigError(f"method name {name!r} is already registered; pass replace=True to replace it")
    _REGISTRY[name] = factory


def method_names() -> list[str]:
    """Every registered name, the defaults first (aliases not included)."""
    return list(DEFAULT_METHODS) + sorted(n for n in _REGISTRY if n not in DEFAULT_METHODS)


def canonical_name(name: str) -> str:
    """The registered name for ``name`` or one of its aliases.

    Raises:
        ConfigError: unknown name; the message names the closest ones.
    """
    name = name.strip()
    if name in _REGISTRY:
        return name
    if name in ALIASES:
        return ALIASES[name]
    hint = did_you_mean(name, [*_REGISTRY, *ALIASES], n=3, cutoff=0.5)
    raise ConfigError(
        f"unknown method {name!r}{hint}; known: {', '.join(DEFAULT_METHODS)}, their aliases "
        f"({', '.join(ALIASES)}) and the hx-* variants ({', '.join(n for n in _REGISTRY if n.startswith('hx-'))})"
    )


def build_methods(names: Sequence[str], options: MethodOptions | None = None) -> list[RetrievalMethod]:
    """Build the methods named (registered names or aliases), in order.

    Raises:
        ConfigError: an unknown name, the same method twice, or a factory whose
            method is named differently from its registration.
    """
    options = options or MethodOptions()
    resolved = [canonical_name(n) for n in names]  # every name is checked before anything loads
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"methods {list(names)} name the same method twice; give each once")
    shared: dict[str, HybridCtxMethod] = {}
    out: list[RetrievalMethod] = []
    for name in resolved:
        entry = _REGISTRY[name]
        method = _hybrid(name, entry, options, shared) if isinstance(entry, HybridSpec) else entry(options)
        if method.name != name:
            raise ConfigError(f"the factory registered as {name!r} built a method named {method.name!r}")
        out.append(method)
    return out


def variant_methods(
    names: Sequence[str],
    *,
    base_encoder: str = "window",
    base: RetrievalConfig | None = None,
    options: MethodOptions | None = None,
    dense_too: bool = False,
) -> list[RetrievalMethod]:
    """The methods of ``benchmarks/eval_variants.py``: bare variant names, ``hx-``-prefixed.

    Args:
        names: keys of :data:`ENCODERS` (an encoder variant) or :data:`RETRIEVAL`
            (retrieval settings on ``base_encoder``), or ``peer:NAME``.
        base_encoder: the encoder of the retrieval variants.
        base: retrieval settings the variants change (default: the defaults).
        options: as for :func:`build_methods`.
        dense_too: also score each encoder variant in dense-only mode.

    Raises:
        ConfigError: an unknown variant or peer.
    """
    options = options or MethodOptions()
    if base_encoder not in ENCODERS:
        raise ConfigError(f"unknown base encoder {base_encoder!r}{did_you_mean(base_encoder, ENCODERS)}")
    shared: dict[str, HybridCtxMethod] = {}
    out: list[RetrievalMethod] = []
    for name in names:
        if name in ENCODERS:
            method = _hybrid(f"hx-{name}", HybridSpec(ENCODERS[name]), options, shared, base)
            out.append(method)
            if dense_too:  # the encoder alone, on the same index
                out.append(method.with_config(f"hx-{name}-dense", mode="dense"))
        elif name in RETRIEVAL:
            out.append(_hybrid(f"hx-{name}", HybridSpec(ENCODERS[base_encoder], RETRIEVAL[name]), options, shared,
                               base))
        elif name.startswith("peer:"):
            out.extend(build_methods([name[5:]], options))
        else:
            hint = did_you_mean(name, [*ENCODERS, *RETRIEVAL], n=3, cutoff=0.5)
            raise ConfigError(f"unknown variant {name!r}{hint}; known: {sorted(ENCODERS) + sorted(RETRIEVAL)} "
                              "or peer:NAME")
    return out


def _hybrid(
    name: str,
    spec: HybridSpec,
    options: MethodOptions,
    shared: dict[str, HybridCtxMethod],
    base: RetrievalConfig | None = None,
) -> HybridCtxMethod:
    from dataclasses import replace

    from hybridctx.eval.hybrid_method import HybridCtxMethod
    from hybridctx.retrieval.retriever import RetrievalConfig

    encoder = dict(spec.encoder)
    if options.encoder is not None:
        encoder.setdefault("model", options.encoder)
    if options.device is not None:
        encoder.setdefault("device", options.device)
    key = json.dumps(encoder, sort_keys=True, default=str)
    config = replace(base or RetrievalConfig(), **dict(spec.changes))
    if key not in shared:
        shared[key] = HybridCtxMethod(name, encoder=encoder, config=config, tokenizer=options.tokenizer,
                                      show_progress=options.show_progress, cache_dir=options.cache_dir)
        return shared[key]
    first = shared[key]
    first._get_encoder()  # load once, so the variant shares the object (and the index)
    return first.with_config(name, **{f: getattr(config, f) for f in config.__dataclass_fields__})
