"""A real HTTP server on 127.0.0.1 that plays an OpenAI-compatible endpoint from a script.

Tests queue replies (``Reply``) and read back what the client sent
(``server.requests``). With no reply queued, ``/v1/chat/completions`` answers a
fixed JSON completion and any other path answers 404.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        status: HTTP status.
        body: a JSON-serialisable body (ignored when ``events`` is set).
        events: server-sent event payloads; each is sent as ``data: <payload>``
            (dicts as JSON), followed by ``data: [DONE]`` unless ``done`` is False.
        headers: extra response headers.
        delay_s: wait this long before answering (to outlast a client timeout).
        path: only answer requests to this path (others get the default).
    """

    status: int = 200
    body: Any = None
    events: list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    done: bool = True
    path: str = "/v1/chat/completions"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


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
            with server.lock:
                server.requests.append(Request(self.command, self.path, dict(self.headers.items()), body))
            reply = server.next_reply(self.path)
            if reply.delay_s and server.stopping.wait(reply.delay_s):
                return
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                pass

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            if reply.events is not None:
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(b": keep-alive\n\n")
                for event in reply.events:
                    payload = event if isinstance(event, str) else json.dumps(event)
                    self.wfile.write(f"data: {payload}\n\n".encode("utf-8"))
                    self.wfile.flush()
                if reply.done:
                    self.wfile.write(b"data: [DONE]\n\n")
                return
            data = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler
