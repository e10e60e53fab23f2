"""Command line of the web app: ``python -m examples.webapp [--no-llm] [--llm URL --model NAME]``.

Why its own module: ``__main__`` and ``app.app_from_env`` (for ``uvicorn
--factory``) read the same options into the same ``WebSettings``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .state import WebSettings

__all__ = ["build_parser", "main", "settings_from_args"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.webapp",
        description="Ask questions about a document in the browser: route, spans in place, tokens, cited answer.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME[:PORT]",
                        help="a further name the Host header may carry, e.g. behind a reverse proxy "
                             "(repeatable; 127.0.0.1, localhost, ::1 and --host are always allowed)")
    parser.add_argument("--index", type=Path, default=None,
                        help="index directory, kept between runs (default: a temporary one)")
    parser.add_argument("--llm", default="local",
                        help="'local' (SmolLM2 on this machine, the default) or an OpenAI-compatible base URL")
    parser.add_argument("--model", default=None, help="model name the --llm URL serves")
    parser.add_argument("--no-llm", action="store_true", help="retrieval only: route and retrieve, no answer")
    parser.add_argument("--profile", default="smollm2-135m-cpu",
                        help="model profile the router costs against by default (default: %(default)s)")
    parser.add_argument("--doc", type=Path, action="append", default=[], metavar="PATH",
                        help="a further file or directory to index at start (repeatable)")
    parser.add_argument("--no-bundled", action="store_true", help="do not index the bundled sample book")
    parser.add_argument("--answer-tokens", type=int, default=192, help="longest answer (default: %(default)s)")
    parser.add_argument("--budget", type=int, default=1024, help="budget the page starts with (default: %(default)s)")
    return parser


def settings_from_args(argv: list[str] | None = None) -> WebSettings:
    args = build_parser().parse_args(argv)
    return _settings(args)


def _settings(args: argparse.Namespace) -> WebSettings:
    return WebSettings(
        index_dir=args.index, llm=None if args.no_llm else args.llm, model=args.model, profile=args.profile,
        documents=tuple(args.doc), bundled=not args.no_bundled, answer_tokens=args.answer_tokens,
        default_budget=args.budget, host=args.host, allowed_hosts=tuple(args.allow_host),
    )


def main(argv: list[str] | None = None) -> int:
    from hybridctx.errors import HybridCtxError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        import uvicorn

        from .app import create_app
        from .state import WebState

        state = WebState.start(_settings(args))
    except HybridCtxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"error: {exc}; install the web app's packages with: pip install 'hybridctx[webapp]'",
              file=sys.stderr)
        return 2
    try:
        print(f"hybridctx web app on http://{args.host}:{args.port}/ (Ctrl+C to stop)")
        uvicorn.run(create_app(state), host=args.host, port=args.port, ws="none", log_level="info")
    finally:
        state.close()
    return 0
