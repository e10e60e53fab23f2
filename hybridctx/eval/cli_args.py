"""Arguments the ``hybridctx eval`` commands share: where the data is, how much of it, where results go.

Why: ``eval qa`` and ``eval route`` read the same datasets the same way, and
a user who learned one should not meet different spellings in the other.
Standard library only, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

__all__ = ["add_data_arguments", "add_llm_arguments", "answer_llm", "int_list", "name_list", "progress", "quiet_bm25s",
           "resolve_data"]

_SEP = re.compile(r"[,\s]+")


def int_list(text: str) -> list[int]:
    """``"512,1024"`` -> ``[512, 1024]``; argparse turns the error into exit code 2."""
    values = []
    for part in _SEP.split(text.strip()):
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a whole number; give e.g. 512,1024,2048") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{value} is not a positive number of tokens")
        values.append(value)
    if not values:
        raise argparse.ArgumentTypeError("give at least one number, e.g. 512,1024")
    return values


def name_list(text: str) -> list[str]:
    """``"a,b c"`` -> ``["a", "b", "c"]``."""
    names = [n for n in _SEP.split(text.strip()) if n]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def add_data_arguments(p: argparse.ArgumentParser, *, limit: int, out: str) -> None:
    """``--data --datasets --limit --seed --cache --out --no-progress --json``."""
    p.add_argument("--data", default=None, metavar="DIR",
                   help="a folder of datasets in the ../shared/data format, or one dataset folder with docs.jsonl "
                        "and qa.jsonl (default: $HYBRIDCTX_EVAL_DATA; one of the two is needed)")
    p.add_argument("--datasets", type=name_list, default=None, metavar="A,B",
                   help="dataset folder names under --data (default: leval,locomo,hotpotqa,drcd,cmrc2018,longbench_zh)")
    p.add_argument("--limit", type=int, default=limit, metavar="N",
                   help=f"questions per dataset, sampled by --seed; 0 = all (default {limit})")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="sampling seed (default 0)")
    p.add_argument("--cache", default=None, metavar="DIR", help="keep built hybridctx indexes here and reuse them")
    p.add_argument("--encoder", default=None, metavar="NAME_OR_PATH",
                   help="encoder of hybridctx and the dense peers (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--out", default=out, metavar="DIR", help=f"where results are written (default {out})")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--json", action="store_true", help="print the results JSON instead of the table")


def add_llm_arguments(p: argparse.ArgumentParser) -> None:
    """``--llm --model --api-key-env --answer-tokens --answer-cache``: answer the questions and score the answers."""
    p.add_argument("--llm", default=None, metavar="local|URL",
                   help="also answer every question with this LLM ('local': the embedded SmolLM2; or an "
                        "OpenAI-compatible base URL) using ask's prompt, and score the answers (EM, F1, "
                        "multiple-choice accuracy, refusals, tokens, USD, seconds); writes answers.json/.md/.png")
    p.add_argument("--model", default=None, metavar="NAME", help="model name at the --llm URL, or a local model directory")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                   help="environment variable holding the --llm API key")
    p.add_argument("--answer-tokens", type=int, default=64, metavar="N", help="longest answer (default 64)")
    p.add_argument("--answer-cache", default=None, metavar="DIR",
                   help="answers kept by model and prompt, so a rerun asks nothing again "
                        "(default $HYBRIDCTX_CACHE/answers, else ~/.cache/hybridctx/answers)")


def answer_llm(args: argparse.Namespace) -> object:
    """The ``--llm`` backend behind the answer cache (a ``MeteredLLM``).

    Raises:
        ConfigError: ``--answer-tokens`` below 1, or a URL without ``--model``.
    """
    from hybridctx.errors import ConfigError
    from hybridctx.eval.answer_cache import AnswerCache, MeteredLLM, default_answer_cache
    from hybridctx.llms import load_llm

    if args.answer_tokens < 1:
        raise ConfigError(f"--answer-tokens {args.answer_tokens} must be at least 1")
    options: dict[str, object] = {"cache": True} if args.llm == "local" and args.model is None else {}
    if args.llm.startswith(("http://", "https://")):
        options = {"api_key_env": args.api_key_env}
    llm = load_llm(args.llm, model=args.model, **options)
    return MeteredLLM(llm, AnswerCache(Path(args.answer_cache) if args.answer_cache else default_answer_cache()))


def resolve_data(args: argparse.Namespace) -> Path:
    """``--data``, else ``$HYBRIDCTX_EVAL_DATA`` (an ``InputError`` when neither is given)."""
    from hybridctx.eval.datasets import default_data_root

    return Path(args.data) if args.data else default_data_root()


def progress(args: argparse.Namespace) -> bool | None:
    """``False`` with ``--no-progress``, else ``None`` (bars on a terminal)."""
    return False if args.no_progress else None


def quiet_bm25s() -> None:
    """Import bm25s and jieba now and undo the DEBUG level they give their loggers on import.

    Without this, their DEBUG lines (index building, dictionary loading) flood
    stderr in the middle of the progress bars whatever ``-v`` says.
    """
    import importlib

    level = max(logging.getLogger().getEffectiveLevel(), logging.WARNING)
    for name in ("bm25s", "jieba"):
        try:
            importlib.import_module(name)
        except ImportError:  # jieba is optional (Chinese word splitting); nothing to quiet then
            continue
        logging.getLogger(name).setLevel(level)
