"""A real HTTP server on 127.0.0.1 that plays an OpenAI-compatible endpoint from a script.

Tests queue replies (``Reply``) and read back what the client sent
(``server.requests``). With no reply queued, ``/v1/chat/completions`` answers a
fixed JSON completion and any other path answers 404.

A reply can also misbehave the way real servers and proxies do (the fault
modes): stop a stream without ``[DONE]`` (``done=False``), cut it inside an
event (``tail``), answer 200 with an HTML page (``raw`` + ``content_type``),
trickle keep-alive comments for ever (``keepalive_s``), send one byte at a time
(``byte_every_s``), echo the request's ``Authorization`` header in an error
(``body`` as a function of the request headers), or put raw bytes that are not
UTF-8 into a streamed chunk (an ``events`` item given as ``bytes``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        status: HTTP status.
        body: a JSON-serialisable body (ignored when ``events`` or ``raw`` is
            set), or a function of the request headers that returns one.
        events: server-sent event payloads; each is sent as ``data: <payload>``
            (dicts as JSON, ``bytes`` verbatim), followed by ``data: [DONE]``
            unless ``done`` is False.
        headers: extra response headers.
        delay_s: wait this long before answering (to outlast a client timeout).
        done: end the events with ``data: [DONE]``.
        path: only answer requests to this path (others get the default).
        raw: send these bytes as the body, verbatim.
        content_type: the ``Content-Type`` (default: JSON, or an event stream).
        tail: bytes written after the events before the connection is closed,
            e.g. half an event (a stream cut mid-answer).
        keepalive_s: after the events, send a ``: keep-alive`` comment this
            often until the client hangs up or the server stops.
        byte_every_s: write the body one byte at a time, this many seconds apart.
        chunked: send the body with HTTP/1.1 chunked transfer encoding (as
            uvicorn-based servers such as vLLM and SGLang do) and close the
            connection without the final chunk when ``done`` is False or a
            ``tail`` is set: the cut a client sees when a server dies.
    """

    status: int = 200
    body: Any = None
    events: list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    done: bool = True
    path: str = "/v1/chat/completions"
    raw: bytes | None = None
    content_type: str | None = None
    tail: bytes = b""
    keepalive_s: float = 0.0
    byte_every_s: float = 0.0
    chunked: bool = False


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)
    ended: float | None = None  # when the reply was done or the client hung up


def completion_body(text: str, *, prompt_tokens: int = 11, completion_tokens: int = 5,
                    finish_reason: str = "stop", model: str = "test-model") -> dict[str, Any]:
    """A non-streaming chat completion as OpenAI returns it."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def delta_chunk(content: str | None, *, finish_reason: str | None = None, model: str = "test-model") -> dict[str, Any]:
    """One streamed chunk carrying a piece of the answer."""
    delta = {} if content is None else {"content": content}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def html_page(title: str = "502 Bad Gateway") -> bytes:
    """The kind of page a proxy or a login wall sends with status 200."""
    return (f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
            f"<body><h1>{title}</h1>\n<p>nginx</p></body></html>\n").encode("utf-8")


def echo_authorization(headers: dict[str, str]) -> dict[str, Any]:
    """An error body that repeats the request's credentials, as some gateways do."""
    auth = headers.get("Authorization", "(none)")
    return {"error": {"message": f"invalid credentials in request header Authorization: {auth} "
                                 f"(expected a key from the console)", "type": "invalid_request_error"}}


class LoopbackServer:
    """The server, its thread, the reply script and the request log."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> LoopbackServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes replies that are still waiting out a delay
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def queue(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            for i, reply in enumerate(self.replies):
                if reply.path == path:
                    return self.replies.pop(i)
        if path == "/v1/chat/completions":
            return Reply(body=completion_body("default answer"))
        return Reply(status=404, body={"error": {"message": f"no route {path}"}}, path=path)


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            self._serve(json.loads(raw.decode("utf-8")) if raw else None)

        def _serve(self, body: Any) -> None:
            request = Request(self.command, self.path, dict(self.headers.items()), body)
            with server.lock:
                server.requests.append(request)
            reply = server.next_reply(self.path)
            try:
                if reply.delay_s and server.stopping.wait(reply.delay_s):
                    return
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                pass
            finally:
                request.ended = time.monotonic()

        def _send(self, reply: Reply) -> None:
            if reply.chunked:
                self.protocol_version = "HTTP/1.1"
            self.send_response(reply.status)
            if reply.events is not None:
                self._headers(reply, reply.content_type or "text/event-stream", None)
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self._write(reply, b": keep-alive\n\n")
                for event in reply.events:
                    self._write(reply, b"data: " + _payload(event) + b"\n\n")
                if reply.done:
                    self._write(reply, b"data: [DONE]\n\n")
                while reply.keepalive_s and not server.stopping.wait(reply.keepalive_s):
                    self._write(reply, b": keep-alive\n\n")
            else:
                body = reply.body(self._request_headers()) if callable(reply.body) else reply.body
                data = reply.raw if reply.raw is not None else b"" if body is None else json.dumps(body).encode()
                self._headers(reply, reply.content_type or "application/json", None if reply.chunked else len(data))
                self.end_headers()
                self._write(reply, data)
            if reply.tail:
                self._write(reply, reply.tail)
            if reply.chunked and reply.done and not reply.tail:
                self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True

        def _headers(self, reply: Reply, content_type: str, length: int | None) -> None:
            self.send_header("Content-Type", content_type)
            if length is not None:
                self.send_header("Content-Length", str(length))
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            for key, value in reply.headers.items():
                self.send_header(key, value)

        def _write(self, reply: Reply, data: bytes) -> None:
            pieces = [data[i:i + 1] for i in range(len(data))] if reply.byte_every_s else [data]
            for piece in pieces:
                if reply.byte_every_s and server.stopping.wait(reply.byte_every_s):
                    return
                if reply.chunked:
                    piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                self.wfile.write(piece)
                self.wfile.flush()

        def _request_headers(self) -> dict[str, str]:
            return dict(self.headers.items())

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler


def _payload(event: Any) -> bytes:
    if isinstance(event, bytes):
        return event
    return (event if isinstance(event, str) else json.dumps(event)).encode("utf-8")
