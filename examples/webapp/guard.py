"""Who may talk to the web app, and the headers every reply carries.

Why: the app has no login and trusts whoever reaches 127.0.0.1, so without
these checks any web page the user opens could use it through the browser. A
form posted from ``http://evil.example`` (or a ``no-cors`` fetch) would index a
file, and DNS rebinding (a name the attacker controls, re-pointed at
127.0.0.1) would let a page read the documents. So, before routing and before
any body is read:

- every request's ``Host`` must name this server: the address its socket is
  bound to, ``localhost``/``127.0.0.1``/``::1``, or the ``--host`` name, at the
  server's own port; or a name given with ``--allow-host NAME[:PORT]``;
- every state-changing request (anything but GET/HEAD/OPTIONS) from a browser
  must come from this app's own origin: ``Origin`` must equal the ``Host``;
  where a browser leaves ``Origin`` out, ``Sec-Fetch-Site`` must say
  ``same-origin`` (or ``none``) or the ``Referer`` must be on this origin. A
  request with none of the three is not from a browser (curl, a script), so no
  web page can be behind it.

A refusal is a JSON 403 ``{"error": ...}``. Every reply, refusals included,
carries ``nosniff``, a Content-Security-Policy that allows only this origin's
own script, style and fetches (the page has no inline code), no framing, and a
same-origin referrer policy. An exception no route handled becomes a JSON 500
that names nothing on the server; its traceback goes to the log.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from hybridctx.errors import ConfigError

__all__ = ["SECURITY_HEADERS", "HostPolicy", "RequestGuard", "parse_host"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The names that always mean this machine.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
#: Methods that only read; every other one changes something.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SHOWN = 80  # longest header value quoted back in a refusal

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",  # the page's empty favicon is a data: URL
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
_HEADER_BYTES = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS]


def parse_host(value: str) -> tuple[str, int | None] | None:
    """``"Example.com:8000"`` → ``("example.com", 8000)``; ``"[::1]"`` → ``("::1", None)``.

    Returns ``None`` for anything that is not a host with an optional port.
    """
    value = value.strip().lower()
    if not value or any(c in value for c in "/?#@\\ \t"):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:  # a bare IPv6 address (as --host ::1 is written)
        name, port_text = value, None
    else:
        name, _, port_text = value.partition(":")
        port_text = port_text if ":" in value else None
    name = name.rstrip(".")
    if not name:
        return None
    if port_text is None:
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return name, int(port_text)


def _is_wildcard(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_unspecified
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPolicy:
    """The ``Host`` names this server answers to.

    Attributes:
        local: names allowed at the server's own port (the loopback names and
            the ``--host`` name); the socket's own address is always allowed too.
        extra: ``--allow-host`` entries as ``(name, port)``; port ``None``
            allows the name at any port (as a reverse proxy forwards it).
    """

    local: frozenset[str]
    extra: frozenset[tuple[str, int | None]]

    @classmethod
    def build(cls, bind_host: str | None = None, allowed: Iterable[str] = ()) -> HostPolicy:
        """The policy for a server bound to ``bind_host`` plus the ``allowed`` names.

        Raises:
            ConfigError: an ``allowed`` entry that is not ``NAME`` or ``NAME:PORT``.
        """
        local = set(LOOPBACK_NAMES)
        if bind_host:
            parsed = parse_host(bind_host)
            if parsed is not None and not _is_wildcard(parsed[0]):
                local.add(parsed[0])
        extra = set()
        for entry in allowed:
            parsed = parse_host(entry)
            if parsed is None or parsed[0] == "*" or _is_wildcard(parsed[0]):
                raise ConfigError(f"--allow-host {entry!r} is not a host name or address with an optional "
                                  "port; pass it as NAME or NAME:PORT (e.g. --allow-host myhost.lan:8000)")
            extra.add(parsed)
        return cls(frozenset(local), frozenset(extra))

    def allows(self, name: str, port: int, server: tuple[str, int | None] | None) -> bool:
        """Whether ``name:port`` (from a Host header) names this server.

        Args:
            name: the host, lowercase.
            port: its port (the scheme's default where the header has none).
            server: the ``(address, port)`` the connection came in on, if known.
        """
        if (name, None) in self.extra or (name, port) in self.extra:
            return True
        own_port = server[1] if server else None
        if own_port is not None and port != own_port:
            return False
        return name in self.local or (server is not None and name == str(server[0]).lower())


class RequestGuard:
    """ASGI middleware: the Host and Origin checks, the security headers, and
    a JSON 500 for any exception no route handled."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            logger.warning("refused %s %s: %s", scope.get("method", "WEBSOCKET"), scope.get("path"), refusal)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _send_json(send, 403, refusal)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _HEADER_BYTES if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:  # noqa: BLE001 - the last place a reply can still be sent; logged in full
            logger.exception("internal error answering %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_json(send, 500, "the web app failed on this request (an internal error); "
                                            "its log has the details")

    def _refusal(self, scope: Scope) -> str | None:
        """Why this request is refused, or ``None`` to let it through."""
        headers = _headers(scope)
        scheme = scope.get("scheme", "http")
        server = tuple(scope["server"]) if scope.get("server") else None
        host_value = headers.get("host")
        if host_value is None:
            return "the request has no Host header; send the address you reached this server at"
        host = _origin_key(scheme, host_value)
        default_port = _DEFAULT_PORTS.get(scheme, 80)
        if host is None or not self.policy.allows(host[0], host[1] or default_port, server):
            shown = _shown(host_value)
            port = server[1] if server and server[1] else "PORT"
            return (f"the Host header {shown} does not name this server, so the request was refused "
                    f"(this blocks DNS rebinding); open the app at http://127.0.0.1:{port}/, or start it "
                    f"with --allow-host {shown} if that name is really this server")
        if scope["type"] == "http" and scope.get("method", "GET").upper() in SAFE_METHODS:
            return None
        return self._cross_origin(headers, host)

    @staticmethod
    def _cross_origin(headers: dict[str, str], host: tuple[str, int | None]) -> str | None:
        """Why a browser's state-changing request is not from this origin, or ``None``."""
        if "origin" in headers:
            value, what = headers["origin"], "a cross-origin request from {}"
            same = _url_key(value) == host
        elif "sec-fetch-site" in headers:
            value, what = headers["sec-fetch-site"], "a {} request (Sec-Fetch-Site)"
            same = value.strip().lower() in ("same-origin", "none")
        elif "referer" in headers:
            value, what = headers["referer"], "a request from the page {}"
            same = _url_key(value) == host
        else:
            return None  # no browser sent this: a page cannot make a request without all three
        if same:
            return None
        return what.format(_shown(value)) + " may not change this app; only the app's own page can upload or ask"


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers by lowercase name; a repeated header keeps its first value."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _origin_key(scheme: str, host_value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host value, the scheme's default port written as ``None``."""
    parsed = parse_host(host_value)
    if parsed is None:
        return None
    name, port = parsed
    return name, None if port == _DEFAULT_PORTS.get(scheme) else port


def _url_key(url: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of an Origin or Referer URL, as :func:`_origin_key` writes a Host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return _origin_key(parts.scheme, parts.netloc)


def _shown(value: str) -> str:
    """A header value quoted for a message, cut to a readable length."""
    text = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
    return repr(text)


async def _send_json(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode("utf-8")
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *_HEADER_BYTES],
    })
    await send({"type": "http.response.body", "body": body})
