"""Encoders are built through the registry (``load_encoder``), so every index records its backend.

An encoder class constructed directly builds an encoder that records nothing
of how it was made, and an index built with a plug-in's or FlagEmbedding's
encoder would then reopen with the default one (issue 16.2). This reads the
package's source (``hybridctx/``, ``embeddings/``, ``indexers/``,
``examples/``, ``benchmarks/``) and fails on any call of a concrete encoder
class outside ``embeddings/registry.py`` and the places listed below with the
reason each must build one itself. Concrete encoder classes are found, not
listed: a class that defines both ``encode_documents`` and ``encode_queries``
and is neither a Protocol nor one of the wrappers below.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("hybridctx", "embeddings", "indexers", "examples", "benchmarks")
REGISTRY = "embeddings/registry.py"

#: Encoders that wrap another encoder (built by the registry) and pass its record on
#: (``registry.adopt_record``); building one is not building an encoder.
WRAPPERS = {
    "RayLandmarkEncoder": "runs the wrapped encoder's backend on Ray actors",
    "CachedWindowEncoder": "the eval window cache around a windowed encoder",
}

#: (path, class) -> why that file constructs the class itself.
ALLOWED = {
    ("embeddings/training/trainer.py", "WindowedLandmarkEncoder"):
        "validation serves the model being trained (loaded=, a live torch object), which no backend takes",
}


def _sources() -> dict[str, str]:
    out = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            out[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
    return out


def _is_protocol(node: ast.ClassDef) -> bool:
    return any((b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")) == "Protocol" for b in node.bases)


def concrete_encoder_classes(sources: dict[str, str]) -> set[str]:
    found = set()
    for text in sources.values():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and not _is_protocol(node):
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                if {"encode_documents", "encode_queries"} <= methods:
                    found.add(node.name)
    return found - set(WRAPPERS)


def constructions(text: str, classes: set[str]) -> list[tuple[int, str]]:
    """``(line, class)`` of each call of one of ``classes`` in ``text``: by name, through a
    module (``windowed.WindowedLandmarkEncoder(...)``) or under an ``import ... as`` alias."""
    tree = ast.parse(text)
    names = {c: c for c in classes}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.update({a.asname: a.name for a in node.names if a.name in classes and a.asname})
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in names:
            out.append((node.lineno, names[func.id]))
        elif isinstance(func, ast.Attribute) and func.attr in classes:
            out.append((node.lineno, func.attr))
    return out


def test_encoders_are_built_through_the_registry() -> None:
    sources = _sources()
    classes = concrete_encoder_classes(sources)
    assert {"WindowedLandmarkEncoder", "PooledLandmarkEncoder"} <= classes  # the finder finds the built-ins
    offending, seen = [], set()
    for path, text in sources.items():
        if path == REGISTRY:
            continue
        for line, cls in constructions(text, classes):
            if (path, cls) in ALLOWED:
                seen.add((path, cls))
            else:
                offending.append(f"{path}:{line} constructs {cls}")
    assert not offending, ("build encoders with hybridctx.embeddings.load_encoder (or encoder_from_settings) so "
                           "the index records its backend, or list the place and why in ALLOWED:\n  "
                           + "\n  ".join(offending))
    assert seen == set(ALLOWED), f"ALLOWED lists places that no longer construct an encoder: {set(ALLOWED) - seen}"


def test_the_finder_catches_every_spelling() -> None:
    text = ("from hybridctx.embeddings.windowed import WindowedLandmarkEncoder as W\n"
            "from hybridctx.embeddings import pooled\n"
            "a = W(device='cpu')\n"
            "b = pooled.PooledLandmarkEncoder(config)\n"
            "c = WindowedLandmarkEncoder()\n"
            "d = load_encoder({'device': 'cpu'})\n")
    found = constructions(text, {"WindowedLandmarkEncoder", "PooledLandmarkEncoder"})
    assert sorted(found) == [(3, "WindowedLandmarkEncoder"), (4, "PooledLandmarkEncoder"),
                             (5, "WindowedLandmarkEncoder")]
    wrapper = "class X:\n    def encode_documents(self): ...\n    def encode_queries(self): ...\n"
    assert concrete_encoder_classes({"x.py": wrapper}) == {"X"}
    assert concrete_encoder_classes({"x.py": wrapper.replace("class X:", "class X(Protocol):")}) == set()
