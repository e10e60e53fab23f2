"""The one error tree of hybridctx.

Every error the library raises on purpose derives from ``HybridCtxError``; each
also inherits the builtin it refines, so ``except ValueError`` keeps working::

    HybridCtxError
    ├── ConfigError(ValueError)            bad option or setting
    ├── InputError(ValueError)             bad documents or queries
    │   └── DocumentError                  one file or JSONL line at fault
    ├── MissingDependencyError(ImportError) optional package not installed
    ├── IndexStoreError                     problems with an index on disk
    │   ├── IndexNotFoundError(FileNotFoundError)
    │   ├── IndexCorruptError              missing/changed file, bad checksum
    │   ├── IndexVersionError              written by a newer format
    │   ├── IndexLockedError               another process is writing the index
    │   ├── UntrustedStoreError            a store location the user did not give
    │   └── EncoderMismatchError           query encoder differs from the index's
    ├── BudgetError(ValueError)            a budget that nothing can fit
    ├── EncoderError(RuntimeError)         an encoder service failed (an embeddings API)
    └── LLMError(RuntimeError)             a model backend failed
        └── ContextLengthError             prompt longer than the model window

Messages are whole sentences that name the value at fault and what to do.
"""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "ConfigError",
    "ContextLengthError",
    "DocumentError",
    "EncoderError",
    "EncoderMismatchError",
    "HybridCtxError",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexNotFoundError",
    "IndexStoreError",
    "IndexVersionError",
    "InputError",
    "LLMError",
    "MissingDependencyError",
    "UntrustedStoreError",
]


class HybridCtxError(Exception):
    """Root of every error hybridctx raises on purpose."""


class ConfigError(HybridCtxError, ValueError):
    """An option or configuration value is invalid."""


class InputError(HybridCtxError, ValueError):
    """Documents or queries given to hybridctx are unusable."""


class DocumentError(InputError):
    """One input file (or one line of it) is unusable.

    Attributes:
        path: the file at fault.
        line: 1-based line number for JSONL input, else ``None``.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class MissingDependencyError(HybridCtxError, ImportError):
    """An optional package is needed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed; "
            f"install it with: pip install 'hybridctx[{extra}]'"
        )


class IndexStoreError(HybridCtxError):
    """An index on disk cannot be used."""


class IndexNotFoundError(IndexStoreError, FileNotFoundError):
    """No index exists at the given directory."""


class IndexCorruptError(IndexStoreError):
    """An index file is missing, truncated, or fails its checksum."""


class IndexVersionError(IndexStoreError):
    """The index was written by a format this version cannot read."""


class IndexLockedError(IndexStoreError):
    """Another process holds the index's writer lock longer than the caller would wait."""


class UntrustedStoreError(IndexStoreError):
    """A manifest names a local store that opening could run code from (Qdrant local mode
    unpickles its points, a PostgreSQL data directory runs its own configuration) and
    that this user's hybridctx did not write; the user must name it to open it."""


class EncoderMismatchError(IndexStoreError, ValueError):
    """The encoder asked for differs from the one the index was built with."""


class BudgetError(HybridCtxError, ValueError):
    """A token budget is too small for anything to fit."""


class EncoderError(HybridCtxError, RuntimeError):
    """An encoder service (an embeddings API) failed to give vectors, its retries spent."""


class LLMError(HybridCtxError, RuntimeError):
    """A language-model backend failed to answer."""


class ContextLengthError(LLMError):
    """The prompt is longer than the model window."""

    def __init__(self, tokens: int, window: int, model: str = "the model") -> None:
        self.tokens = tokens
        self.window = window
        super().__init__(
            f"the prompt has {tokens} tokens but {model} accepts at most {window}; "
            "lower the budget or use retrieval instead of full context"
        )
