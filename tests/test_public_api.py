"""The public surface is chosen on purpose: this test locks it."""

from __future__ import annotations

import subprocess
import sys

import hybridctx

EXPECTED = [
    "BudgetError", "ConfigError", "Document", "EncoderConfig", "GrowthRule", "HybridContext",
    "HybridCtxError", "IndexReport", "IndexStoreError", "InputError", "Landmark", "MissingDependencyError",
    "PackedContext", "RetrievalConfig", "Retriever", "Span", "SpanCandidate", "WindowedLandmarkEncoder",
    "get_counter", "load_documents", "pack", "split_sentences",
]


def test_all_is_locked_and_sorted() -> None:
    assert hybridctx.__all__ == EXPECTED
    assert hybridctx.__all__ == sorted(hybridctx.__all__)


def test_every_public_name_resolves() -> None:
    for name in hybridctx.__all__:
        assert getattr(hybridctx, name) is not None, name


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
