"""The ``serve`` and ``mcp`` verbs: their flags, their checks, and starting the server.

Why its own module: ``cli.py`` stays thin (one ``add_*_arguments`` and one
``run_*`` call per verb). Every flag is checked before an index or encoder
loads (seconds): the index specs, the profile, the upstream URL, the key
variables, the extras installed and whether the address can be bound, so a
mistake is one line on stderr and exit 2, not a traceback after the load.
Keys are read from the environment once and never printed or logged.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys

from hybridctx.cli.checks import arg_type, check_budget, check_limit
from hybridctx.errors import InputError, MissingDependencyError

__all__ = ["add_mcp_arguments", "add_serve_arguments", "run_mcp", "run_serve"]

logger = logging.getLogger(__name__)

_INDEX_HELP = "an index to serve, as NAME=DIR or DIR (named after the directory); repeatable"
_STORE_HELP = ("the vector store's location for an index kept in pgvector or qdrant, instead of the "
               "manifest's (needed for a local store this user's hybridctx did not write)")


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", action="append", required=True, metavar="NAME=DIR",
                   help=_INDEX_HELP + "; clients pick one by the request's model name")
    p.add_argument("--store-url", default=None, metavar="URL", help=_STORE_HELP)
    p.add_argument("--upstream", required=True, metavar="URL",
                   help="the OpenAI-compatible API root answers come from, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--upstream-model", required=True, metavar="NAME", help="the model name the upstream serves")
    p.add_argument("--upstream-key-env", default=None, metavar="VAR",
                   help="environment variable holding the upstream's API key (default: send none)")
    p.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="environment variable holding the key(s) clients must send, comma-separated "
                        "(default: no key asked)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8400, help="port to bind (default 8400)")
    _add_profile(p)
    p.add_argument("--max-usd", type=arg_type(check_limit, unit="dollars"), default=None, metavar="X",
                   help="most money one request may cost (requests may lower it)")
    p.add_argument("--max-latency-s", type=arg_type(check_limit, unit="seconds"), default=None, metavar="S",
                   help="most seconds one request may take (requests may lower it)")
    p.add_argument("--max-kv-gib", type=arg_type(check_limit, unit="GiB"), default=None, metavar="G",
                   help="most KV-cache memory per request (requests may lower it)")
    p.add_argument("--max-tokens", type=arg_type(check_budget), default=512, metavar="N",
                   help="answer length when a request names none (default 512)")
    p.add_argument("--max-tokens-cap", type=arg_type(check_budget), default=4096,
                   metavar="N", help="the longest answer a request may ask for (default 4096)")
    p.add_argument("--timeout", type=arg_type(check_limit, unit="seconds"), default=120.0, metavar="S",
                   help="most seconds a request's upstream calls may take in all, retries and escalation "
                        "included (default 120)")
    p.add_argument("--upstream-retries", type=_count, default=2, metavar="N",
                   help="further attempts after an upstream 429, 5xx or cut reply (default 2)")
    p.add_argument("--max-concurrent", type=_positive, default=8, metavar="N",
                   help="requests worked on at once (default 8)")
    p.add_argument("--queue-wait", type=arg_type(check_limit, unit="seconds"), default=10.0, metavar="S",
                   help="how long a request waits for a free place before a 429 (default 10)")
    p.add_argument("--span-chars", type=_positive, default=4000, metavar="N",
                   help="span text in the response's hybridctx field is cut to N characters (default 4000)")


def add_mcp_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", action="append", required=True, metavar="NAME=DIR",
                   help=_INDEX_HELP + "; tools take the name as 'index' (default: the first)")
    p.add_argument("--store-url", default=None, metavar="URL", help=_STORE_HELP)
    p.add_argument("--transport", default="stdio", choices=["stdio", "http"],
                   help="stdio (the client starts this command) or streamable HTTP at /mcp (default stdio)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind with --transport http (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8401, help="port to bind with --transport http (default 8401)")
    _add_profile(p)
    p.add_argument("--tokenizer", default="cl100k_base", metavar="NAME",
                   help="tokenizer retrieve counts its budget in (cl100k_base, o200k_base, or a tokenizer.json)")
    p.add_argument("--budget", type=arg_type(check_budget), default=2048, metavar="N",
                   help="retrieve's budget when a call names none (default 2048)")


def run_serve(args: argparse.Namespace) -> int:
    from hybridctx.routing.profiles import get_profile
    from hybridctx.routing.router import RouteLimits
    from hybridctx.serve.gateway import GatewaySettings, create_app
    from hybridctx.serve.indexes import close_indexes, open_indexes, parse_index_specs
    from hybridctx.serve.routing_turn import TurnSettings, Upstream

    specs = parse_index_specs(args.index)
    _require("hybridctx serve", "fastapi", "uvicorn")
    profile = get_profile(args.profile, args.profiles)
    if args.max_tokens > args.max_tokens_cap:
        raise InputError(f"--max-tokens {args.max_tokens} is above --max-tokens-cap {args.max_tokens_cap}")
    upstream = Upstream(args.upstream, args.upstream_model, api_key=_key(args.upstream_key_env, "--upstream-key-env"),
                        read_timeout_s=min(60.0, args.timeout), max_retries=args.upstream_retries)
    upstream.client(window=profile.window, deadline_s=args.timeout)  # a bad URL fails here, before the load
    keys = ()
    if args.api_key_env:
        keys = tuple(k.strip() for k in (_key(args.api_key_env, "--api-key-env") or "").split(",") if k.strip())
    limits = {"max_usd": args.max_usd, "max_latency_s": args.max_latency_s, "max_kv_gib": args.max_kv_gib}
    turn = TurnSettings(profile=args.profile, profiles_file=args.profiles,
                        limits=RouteLimits.from_mapping({k: v for k, v in limits.items() if v is not None}),
                        max_tokens=args.max_tokens, max_tokens_cap=args.max_tokens_cap, timeout_s=args.timeout)
    settings = GatewaySettings(upstream=upstream, turn=turn, api_keys=keys, max_concurrent=args.max_concurrent,
                               max_wait_s=args.queue_wait, span_chars=args.span_chars)
    _check_bindable(args.host, args.port)
    if not keys and not _is_loopback(args.host):
        logger.warning("serving on %s with no client API key: anyone who reaches it spends the upstream's; "
                       "set --api-key-env", args.host)
    indexes = open_indexes(specs, store_url=args.store_url)
    try:
        import uvicorn

        app = create_app(indexes, settings)
        print(f"hybridctx serve: {', '.join(indexes)} on http://{_hostport(args.host, args.port)}/v1, answering "
              f"through {args.upstream_model} (Ctrl+C stops)", file=sys.stderr, flush=True)
        uvicorn.run(app, host=args.host, port=args.port, ws="none", log_config=None,
                    log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
                    access_log=logging.getLogger().isEnabledFor(logging.INFO))
    finally:
        close_indexes(indexes)
    return 0


def run_mcp(args: argparse.Namespace) -> int:
    from hybridctx.routing.profiles import get_profile
    from hybridctx.serve.indexes import close_indexes, open_indexes, parse_index_specs
    from hybridctx.serve.mcp import McpSettings, build_mcp_server
    from hybridctx.packing.tokens import get_counter

    specs = parse_index_specs(args.index)
    _require("hybridctx mcp", "mcp")
    _require_version("hybridctx mcp", "mcp", (2, 3))
    get_profile(args.profile, args.profiles)
    get_counter(args.tokenizer)
    if args.transport == "http":
        _require("hybridctx mcp --transport http", "uvicorn")
        _check_bindable(args.host, args.port)
        if not _is_loopback(args.host):
            logger.warning("MCP over HTTP on %s asks no credentials: anyone who reaches it reads the indexes",
                           args.host)
    indexes = open_indexes(specs, store_url=args.store_url)
    try:
        server = build_mcp_server(indexes, McpSettings(profile=args.profile, profiles_file=args.profiles,
                                                       tokenizer=args.tokenizer, budget=args.budget))
        if args.transport == "stdio":
            server.run("stdio")
        else:
            print(f"hybridctx mcp: {', '.join(indexes)} on http://{_hostport(args.host, args.port)}/mcp "
                  "(Ctrl+C stops)", file=sys.stderr, flush=True)
            server.run("streamable-http", host=args.host, port=args.port)
    finally:
        close_indexes(indexes)
    return 0


def _add_profile(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="smollm2-135m-cpu", metavar="NAME", help="model profile the router costs against")
    p.add_argument("--profiles", default=None, metavar="FILE.toml", help="extra or overriding model profiles")


def _key(var: str | None, flag: str) -> str | None:
    """The key in ``$var`` (``None`` when no variable is named)."""
    if not var:
        return None
    value = os.environ.get(var, "").strip()
    if not value:
        raise InputError(f"{flag} {var}: the environment variable {var} is unset or empty; export the key in it")
    return value


def _require(verb: str, *modules: str) -> None:
    """Refuse to load anything when a package the server needs is missing (``[serve]`` brings them)."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(module, "serve", verb)


def _require_version(verb: str, package: str, least: tuple[int, ...]) -> None:
    """Refuse an installed ``package`` older than ``least`` (mcp 1.x has another server API)."""
    import re
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version(package)
    except PackageNotFoundError:
        return  # importable without metadata (a source checkout): let the import speak
    numbers = tuple(int(n) for n in re.findall(r"\d+", found)[:len(least)])
    if numbers < least:
        wanted = ".".join(map(str, least))
        raise MissingDependencyError(f"{package}>={wanted} (found {found})", "serve", verb)


def _check_bindable(host: str, port: int) -> None:
    """Refuse an address that cannot be bound now (in use, not this machine's), before the load."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r} is not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise InputError(f"cannot listen on {_hostport(host, port)}: {exc.strerror}; "
                             "choose another --port or stop what uses it") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(text: str) -> int:
    value = _whole(text, "port")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return value


def _positive(text: str) -> int:
    value = _whole(text, "number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _count(text: str) -> int:
    value = _whole(text, "number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _whole(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole {what}") from None

