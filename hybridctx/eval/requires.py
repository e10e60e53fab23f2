"""Importing what only the evaluation needs, with the hint that installs it.

Why: sentence-transformers, bm25s, llama-index-core and matplotlib serve the
peers, their chunking and the plots of ``hybridctx eval``, not the library, so
they live in the ``eval`` extra. Every import of them goes through here and a
missing one raises :class:`MissingDependencyError` naming that extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from hybridctx.errors import MissingDependencyError

__all__ = ["EVAL_PACKAGES", "eval_import", "require_eval"]

#: import name -> PyPI name, for the packages of the ``eval`` extra.
EVAL_PACKAGES = {
    "sentence_transformers": "sentence-transformers",
    "bm25s": "bm25s",
    "llama_index.core": "llama-index-core",
    "matplotlib": "matplotlib",
}


def eval_import(module: str, purpose: str) -> ModuleType:
    """``importlib.import_module(module)``, or :class:`MissingDependencyError` naming ``hybridctx[eval]``.

    Args:
        module: a module of one of :data:`EVAL_PACKAGES` (``bm25s.stopwords`` too).
        purpose: what needs it, for the message (``"the BM25 peer"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(_package_of(module), "eval", purpose) from exc


def require_eval(modules: tuple[str, ...], purpose: str) -> None:
    """Fail now, before minutes of work, if any of ``modules`` is not installed (nothing is imported)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or blocked in sys.modules
            found = False
        if not found:
            raise MissingDependencyError(_package_of(module), "eval", purpose)


def _package_of(module: str) -> str:
    for name, package in EVAL_PACKAGES.items():
        if module == name or module.startswith(name + ".") or name.startswith(module + "."):
            return package
    return module.split(".")[0]
