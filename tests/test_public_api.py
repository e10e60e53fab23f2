"""The public surface is chosen on purpose: every public name of the packages is in their
``__all__``, every name there resolves, and importing stays light."""

from __future__ import annotations

import __future__
import importlib
import subprocess
import sys
import types

import pytest

import hybridctx

# The packages whose namespace is public: every public attribute must be exported on purpose.
PACKAGES = ["hybridctx", "hybridctx.embeddings", "hybridctx.indexers"]
# What a user needs for build -> retrieve -> route -> ask, spelt out once more on purpose:
# dropping one of these from __all__ must be a decision, not an accident.
PIPELINE = {"HybridContext", "load_encoder", "EncoderConfig", "IndexReport", "RetrievalOptions", "PackedContext",
            "Router", "RouteLimits", "RouteDecision", "load_llm", "Answer"}
INTERNAL = {"SpanCandidate", "GrowthRule", "pack"}  # importable from their modules, not promised


def _public_attributes(module: types.ModuleType) -> set[str]:
    """Names a user sees in ``dir(module)`` that are not private, not a submodule (an import
    path, not a name) and not a ``from __future__`` directive."""
    names = set()
    for name in set(dir(module)) | set(vars(module)):
        if name.startswith("_"):
            continue
        value = getattr(module, name, None)
        if isinstance(value, types.ModuleType) and value.__name__ == f"{module.__name__}.{name}":
            continue
        if isinstance(value, __future__._Feature):
            continue
        names.add(name)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_in_all_and_every_name_in_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert exported == sorted(set(exported)), "__all__ is sorted, without repeats"
    for name in exported:  # resolving lazy names may add them (and only them) to the namespace
        assert getattr(module, name) is not None, f"{package}.{name} does not resolve"
    unexported = _public_attributes(module) - set(exported)
    assert not unexported, f"public in {package} but not in __all__: {sorted(unexported)}"


def test_an_unexported_stray_name_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a public name slipped into the namespace is reported."""
    monkeypatch.setattr(hybridctx, "stray_helper", lambda: None, raising=False)
    assert _public_attributes(hybridctx) - set(hybridctx.__all__) == {"stray_helper"}


def test_the_pipeline_and_the_error_tree_are_exported_and_internals_are_not() -> None:
    from hybridctx import errors

    assert PIPELINE <= set(hybridctx.__all__)
    assert set(errors.__all__) <= set(hybridctx.__all__)
    assert not INTERNAL & set(hybridctx.__all__)
    from hybridctx.packing.packer import SpanCandidate, pack  # noqa: F401  (still importable where they live)
    from hybridctx.retrieval.spans import GrowthRule  # noqa: F401
    with pytest.raises(AttributeError):
        hybridctx.pack  # noqa: B018


def test_names_resolve_to_their_home_objects() -> None:
    from hybridctx.facade import HybridContext
    from hybridctx.routing.answering import Answer, answer_question

    assert hybridctx.HybridContext is HybridContext and hybridctx.Answer is Answer
    assert HybridContext.ask is answer_question  # one declaration of ask's options


def test_import_is_light_and_side_effect_free() -> None:
    code = (
        "import os, sys, warnings, numpy; before = dict(os.environ); filters = list(warnings.filters);"
        "import hybridctx, hybridctx.embeddings, hybridctx.indexers;"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch','faiss','transformers','tiktoken',"
        "'bm25s','jieba','sentence_transformers','llama_index','tqdm'});"
        "assert not heavy, heavy; assert dict(os.environ) == before; assert warnings.filters == filters;"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_errors_refine_builtins() -> None:
    from hybridctx import errors

    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.IndexNotFoundError, FileNotFoundError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert all(issubclass(getattr(errors, n), errors.HybridCtxError) for n in errors.__all__)
    err = errors.MissingDependencyError("faiss", "cpu", "the FAISS index")
    assert "pip install 'hybridctx[cpu]'" in str(err)
