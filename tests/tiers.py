"""How hard a property test tries, by test tier.

Why: ``make check`` (the edit loop) must finish in well under a minute, while
``make test`` (CI) keeps every property test at full strength. The fast tier
sets ``HYBRIDCTX_TEST_TIER=check`` and runs a fifth of the examples.
"""

from __future__ import annotations

import os

__all__ = ["examples"]


def examples(n: int) -> int:
    """``n`` Hypothesis examples in the full tier, a fifth of them (at least 10) in ``make check``."""
    if os.environ.get("HYBRIDCTX_TEST_TIER") == "check":
        return max(10, n // 5)
    return n
