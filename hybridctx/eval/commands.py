"""The ``hybridctx eval`` sub-commands, wired into the main parser.

Why a registry here: each evaluation (``niah``, ``qa``, ``route``) owns its
arguments and its runner in its own module; the CLI only lists them. The
modules import nothing heavy at the top, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Callable

__all__ = ["EVAL_COMMANDS", "register", "run"]

# name -> (module, one-line help)
EVAL_COMMANDS: dict[str, tuple[str, str]] = {
    "niah": ("hybridctx.eval.cli_niah", "needle-in-a-haystack: is every needle inside the packed context?"),
    "qa": ("hybridctx.eval.cli_qa", "evidence recall of hybridctx and its peers on QA sets, per budget"),
    "route": ("hybridctx.eval.cli_route", "the router on a QA set: mode, tokens, cost and recall vs always-full/retrieve"),
}


def register(sub: Any, add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    """Add one parser per evaluation to ``sub`` (the ``eval`` sub-parsers)."""
    for name, (module_name, help_text) in EVAL_COMMANDS.items():
        module = importlib.import_module(module_name)
        p = add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip().splitlines()[0])
        module.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation named by ``args.eval_verb``."""
    from hybridctx.eval.requires import require_eval

    # Every evaluation writes a plot: a missing matplotlib fails now, not after the run.
    require_eval(("matplotlib",), f"hybridctx eval {args.eval_verb} (its plot)")
    module = importlib.import_module(EVAL_COMMANDS[args.eval_verb][0])
    return int(module.run(args))
