"""The web app's security model, against the real app served by uvicorn on 127.0.0.1.

Every request here is real HTTP (httpx) to a real uvicorn server over a real
index (the packaged encoder, a small document), so what is checked is what a
browser or an attacker's page would get: a hostile ``Host`` (DNS rebinding) is
refused on every route, a state-changing request from another origin is
refused with a JSON 403 and leaves the index byte for byte as it was, every
reply carries the security headers, and no upload name or unreadable upload
gives a 500, a traceback in the log or a server temp path in the reply. The
last tests drive Chromium: a page on another origin tries the upload a
``no-cors`` fetch can make, and the app's own page runs under its CSP with no
violation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the example package
    sys.path.insert(0, str(ROOT))

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")
pytest.importorskip("multipart")  # python-multipart, which uploads need

DOC = "notes.txt"
TEXT = "The lighthouse keeper feeds the gulls at dawn.\nThe keeper's cat is called Biscuit.\n"
EVIL = "http://evil.example"
TEMP_MARKERS = ("/tmp", tempfile.gettempdir(), "hybridctx-upload-", "hybridctx-webapp-")
HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _serve(app: Any) -> tuple[Any, threading.Thread, int]:
    """``app`` under uvicorn on a free port of 127.0.0.1, in a thread; logs go to the root logger."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="webapp-security-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start the web app within 30 s")
        time.sleep(0.05)
    return server, thread, server.servers[0].sockets[0].getsockname()[1]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> Iterator[Any]:
    """The app's index: one small document, the real encoder, no LLM (nothing here needs an answer)."""
    from examples.webapp.state import WebSettings, WebState

    docs = tmp_path_factory.mktemp("webapp-docs")
    (docs / DOC).write_text(TEXT, encoding="utf-8")
    settings = WebSettings(index_dir=tmp_path_factory.mktemp("webapp-security") / "index", llm=None,
                           bundled=False, documents=(docs / DOC,))
    web = WebState.start(settings, encoder=encoder)
    try:
        yield web
    finally:
        web.close()


@pytest.fixture(scope="module")
def server(state: Any) -> Iterator[str]:
    """The base URL of the app, served by uvicorn on 127.0.0.1."""
    from examples.webapp.app import create_app

    srv, thread, port = _serve(create_app(state))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture()
def http(server: str) -> Iterator[Any]:
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


def _port(server: str) -> int:
    return int(server.rsplit(":", 1)[1])


def _fingerprint(state: Any) -> tuple[tuple[str, str], ...]:
    """Every file of the index with its SHA-256: any write changes it."""
    root = Path(state.index_dir)
    return tuple((str(p.relative_to(root)), hashlib.sha256(p.read_bytes()).hexdigest())
                 for p in sorted(root.rglob("*")) if p.is_file())


def _error(response: Any, status: int, *words: str) -> str:
    """The JSON error of ``response``, checked: its status, its words, and no server temp path."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    for marker in TEMP_MARKERS:
        assert marker not in response.text, response.text
    return message


def _upload(http: Any, name: str, data: bytes = b"Pwned by a page on another site.\n", **headers: str) -> Any:
    return http.post("/api/documents", files={"file": (name, data, "text/plain")}, headers=headers)


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()]
    assert not bad, [r.getMessage() for r in bad]


# -- Host: DNS rebinding ----------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/api/document?doc_id={DOC}", "/api/documents", "/api/info", "/",
                                  "/static/app.js"])
@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.attacker.example",
                                  "localhost:{other}", "127.0.0.1:{port}@attacker.example", ""])
def test_a_foreign_host_is_refused_on_every_route(http: Any, server: str, path: str, host: str) -> None:
    port = _port(server)
    host = host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    response = http.get(path, headers={"Host": host})
    _error(response, 403, "Host", "refused")
    assert "Biscuit" not in response.text  # the document's text never leaves


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_this_servers_own_names_are_served(http: Any, server: str, host: str) -> None:
    response = http.get("/api/document", params={"doc_id": DOC}, headers={"Host": host.format(port=_port(server))})
    assert response.status_code == 200, response.text
    assert response.json()["text"] == TEXT


# -- Origin: cross-site requests that change something ---------------------------------


def _hostile_requests(port: int) -> list[tuple[str, dict[str, str]]]:
    return [
        ("an evil Origin", {"Origin": EVIL}),
        ("an evil Origin and Host (the issue's case)", {"Origin": EVIL, "Host": "evil.example:8000"}),
        ("a form post as a browser sends it", {"Origin": EVIL, "Sec-Fetch-Site": "cross-site",
                                               "Sec-Fetch-Mode": "navigate", "Referer": f"{EVIL}/form.html"}),
        ("Origin null (a sandboxed frame)", {"Origin": "null"}),
        ("another port on this machine", {"Origin": f"http://127.0.0.1:{port + 1}"}),
        ("a look-alike name", {"Origin": f"http://127.0.0.1.evil.example:{port}"}),
        ("a https look-alike", {"Origin": f"https://localhost.evil.example:{port}"}),
        ("no Origin, Sec-Fetch-Site cross-site", {"Sec-Fetch-Site": "cross-site"}),
        ("no Origin, Sec-Fetch-Site same-site", {"Sec-Fetch-Site": "same-site"}),
        ("no Origin, an evil Referer", {"Referer": f"{EVIL}/page.html"}),
    ]


def test_a_cross_origin_upload_is_refused_and_indexes_nothing(
    http: Any, server: str, state: Any, caplog: pytest.LogCaptureFixture
) -> None:
    before, docs_before = _fingerprint(state), sorted(state.documents)
    for what, headers in _hostile_requests(_port(server)):
        name = f"evil-{len(headers)}.txt"
        refused = _error(_upload(http, name, **headers), 403, "refused" if "Host" in headers else "may not")
        assert refused, what
        # The same refusal for a url-encoded form and for the question route.
        _error(http.post("/api/documents", data={"file": "x"}, headers=headers), 403)
        _error(http.post("/api/ask", json={"question": "cat?", "doc_id": DOC}, headers=headers), 403)
    assert _fingerprint(state) == before and sorted(state.documents) == docs_before
    listed = [d["doc_id"] for d in http.get("/api/documents").json()["documents"]]
    assert listed == docs_before == [DOC]
    _no_tracebacks(caplog)


def test_this_apps_page_and_non_browser_clients_may_upload(http: Any, server: str, state: Any) -> None:
    own = server  # the Origin the app's own page sends
    allowed = [
        ("same-origin.txt", {"Origin": own}),
        ("fetch-metadata.txt", {"Sec-Fetch-Site": "same-origin"}),
        ("referer.txt", {"Referer": f"{own}/"}),
        ("curl.txt", {}),  # no browser headers at all: not a browser, so no page behind it
    ]
    for name, headers in allowed:
        added = _upload(http, name, f"The note called {name} is here.\n".encode(), **headers)
        assert added.status_code == 201, (name, added.text)
        assert added.json()["document"]["doc_id"] == name
    listed = {d["doc_id"] for d in http.get("/api/documents").json()["documents"]}
    assert {name for name, _ in allowed} <= listed


# -- headers on every reply ------------------------------------------------------------


def test_every_reply_carries_the_security_headers(http: Any, server: str) -> None:
    replies = {
        "page": http.get("/"),
        "script": http.get("/static/app.js"),
        "style": http.get("/static/style.css"),
        "info": http.get("/api/info"),
        "missing document": http.get("/api/document", params={"doc_id": "missing"}),
        "unknown route": http.get("/no/such/route"),
        "missing static file": http.get("/static/nope.js"),
        "wrong method": http.delete("/api/info", headers={"Origin": server}),
        "invalid body": http.post("/api/ask", json={"doc_id": DOC}, headers={"Origin": server}),
        "refused host": http.get("/", headers={"Host": "attacker.example"}),
        "refused origin": http.post("/api/ask", json={}, headers={"Origin": EVIL}),
    }
    for what, reply in replies.items():
        for key, value in HEADERS.items():
            assert reply.headers.get(key) == value, (what, key, dict(reply.headers))
        csp = reply.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, (what, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        if reply.status_code >= 400:  # every refusal is the JSON the page shows
            _error(reply, reply.status_code)
    assert replies["page"].status_code == 200 and replies["script"].status_code == 200
    assert replies["unknown route"].status_code == 404 and replies["wrong method"].status_code == 405


def test_the_page_has_no_inline_code_for_the_csp_to_block() -> None:
    html = (ROOT / "examples" / "webapp" / "static" / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts), scripts
    assert not re.search(r"<style\b", html, flags=re.I)
    assert not re.search(r"\s(style|on[a-z]+)\s*=", html, flags=re.I)
    script = (ROOT / "examples" / "webapp" / "static" / "app.js").read_text(encoding="utf-8")
    assert not re.search(r"\beval\(|new Function\(|setAttribute\(\s*['\"](style|on)", script)


# -- upload names and unreadable uploads -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("a" * 296 + ".txt", 400, ("300 characters long", "at most 200")),
        ("b" * 1_500 + ".md", 400, ("1,503 characters long",)),
        ("c" * 100_000 + ".txt", 400, ("multipart",)),  # past the multipart parser's header limit
        ("....txt", 415, ("upload a file ending in",)),
        ("../../..", 415, ("upload a file ending in",)),
        ("C:\\Users\\me\\", 415, ("upload a file ending in",)),
        ("notes.exe\x00.txt", 201, ()),
        ("\u202etxt.exe", 415, ()),
        ("雪.txt", 201, ()),
    ],
)
def test_long_and_odd_upload_names_get_json_not_a_500(
    http: Any, server: str, state: Any, caplog: pytest.LogCaptureFixture, name: str, status: int, words: tuple
) -> None:
    before = _fingerprint(state)
    reply = _upload(http, name, b"A note with an odd name.\n", Origin=server)
    if status == 201:
        assert reply.status_code == 201, reply.text
        assert re.fullmatch(r"[A-Za-z0-9._ -]+", reply.json()["document"]["doc_id"])
    else:
        message = _error(reply, status, *words)
        assert len(message) < 400, message  # the name is cut in the reply, not echoed whole
        assert _fingerprint(state) == before
    _no_tracebacks(caplog)


def test_the_longest_allowed_name_is_indexed(http: Any, server: str) -> None:
    from examples.webapp.state import MAX_NAME_CHARS

    name = "n" * (MAX_NAME_CHARS - 4) + ".txt"
    added = _upload(http, name, b"The longest name still fits.\n", Origin=server)
    assert added.status_code == 201, added.text
    assert added.json()["document"]["doc_id"] == name


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("latin1.txt", "café au lait".encode("latin-1"), ("'latin1.txt'", "not valid UTF-8")),
        ("utf16.txt", "hello".encode("utf-16"), ("'utf16.txt'", "UTF-16")),
        ("blank.html", b"<html><body><p> </p></body></html>", ("'blank.html'", "no visible text")),
        ("broken.pdf", b"%PDF-1.4 this is not really a PDF", ("'broken.pdf'",)),
    ],
)
def test_unreadable_uploads_name_the_upload_never_a_temp_path(
    http: Any, server: str, state: Any, caplog: pytest.LogCaptureFixture, name: str, data: bytes, words: tuple
) -> None:
    if name.endswith(".pdf"):
        pytest.importorskip("pypdf")
    before = _fingerprint(state)
    _error(_upload(http, name, data, Origin=server), 400, *words)  # no '/tmp' in it, checked there
    assert _fingerprint(state) == before
    _no_tracebacks(caplog)


def test_temp_paths_in_library_errors_are_scrubbed() -> None:
    from examples.webapp.app import _scrub

    tmp = tempfile.gettempdir()
    assert _scrub(f"cannot lock '{tmp}/hybridctx-webapp-abc/index': busy") == "cannot lock 'index': busy"
    assert _scrub("in /tmp") == "in <temporary directory>"
    assert _scrub("/home/me/tmp/x and /tmpfoo stay") == "/home/me/tmp/x and /tmpfoo stay"


# -- the command line ------------------------------------------------------------------


def _start_cli(*args: str, log: Path) -> tuple[subprocess.Popen, int]:
    """``python -m examples.webapp --port 0 ARGS`` as a user starts it; its port read from its log."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "examples.webapp", "--port", "0", *args], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return proc, int(found.group(1))
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    pytest.fail("the web app did not start:\n" + log.read_text()[-3000:])


@pytest.mark.slow
def test_allow_host_lets_a_named_host_in_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / DOC).write_text(TEXT, encoding="utf-8")
    proc, port = _start_cli("--no-llm", "--no-bundled", "--doc", str(tmp_path / DOC), "--index",
                            str(tmp_path / "index"), "--allow-host", "notes.lan", log=tmp_path / "webapp.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for host in ("notes.lan", f"notes.lan:{port}", f"127.0.0.1:{port}"):
                response = http.get("/api/document", params={"doc_id": DOC}, headers={"Host": host})
                assert response.status_code == 200 and response.json()["text"] == TEXT, (host, response.text)
            _error(http.get("/api/documents", headers={"Host": "attacker.example"}), 403, "--allow-host")
            _error(_upload(http, "x.txt", Host="notes.lan", Origin=EVIL), 403, "may not")
            ok = _upload(http, "proxied.txt", b"Through the proxy.\n", Host="notes.lan", Origin="https://notes.lan")
            assert ok.status_code == 201, ok.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = (tmp_path / "webapp.log").read_text()
    assert "refused GET /api/documents" in log and "Traceback" not in log, log


def test_a_malformed_allow_host_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "examples.webapp", "--no-llm", "--allow-host", "http://x/"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-host 'http://x/'" in lines[0] and "Traceback" not in done.stderr


# -- in Chromium -------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing under CI; .ci/run installs it")
        pytest.skip("Chromium is missing; install it with: apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is missing; install it with: pip install -e '.[dev]'")
    return str(found)


EVIL_PAGE = """<!doctype html><html><body><h1>cute cats</h1>
<form id="f" method="post" enctype="multipart/form-data" action="{target}/api/documents">
<input type="hidden" name="file" value="not a file"></form>
<script>
const fd = new FormData();
fd.append("file", new Blob(["Pwned by a page on another site."], {{type: "text/plain"}}), "pwned.txt");
fetch("{target}/api/documents", {{method: "POST", mode: "no-cors", body: fd}})
  .finally(() => document.getElementById("f").submit());
</script></body></html>"""


@pytest.fixture()
def evil_site(server: str) -> Iterator[str]:
    """A page on another origin (localhost, another port) that posts to the app as it loads."""
    page = EVIL_PAGE.format(target=server).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *_: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{site.server_address[1]}/"
    finally:
        site.shutdown()
        site.server_close()


@pytest.mark.slow
def test_a_page_on_another_site_cannot_upload_through_the_browser(
    server: str, state: Any, evil_site: str, caplog: pytest.LogCaptureFixture
) -> None:
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    before, docs_before = _fingerprint(state), sorted(state.documents)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            with page.expect_response(lambda r: r.url == f"{server}/api/documents") as first:
                page.goto(evil_site)
            assert first.value.status == 403  # the fetch reached the app and was refused
            page.wait_for_url(f"{server}/api/documents", timeout=15_000)  # then the form posted
            assert "may not change this app" in page.content()
        finally:
            browser.close()
    refused = [r.getMessage() for r in caplog.records if r.name == "examples.webapp.guard"]
    assert len(refused) == 2 and all(m.startswith("refused POST /api/documents") for m in refused), refused
    assert _fingerprint(state) == before and sorted(state.documents) == docs_before


@pytest.mark.slow
def test_the_page_runs_under_its_csp_without_a_violation(server: str, tmp_path: Path) -> None:
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    note = tmp_path / "csp-note.md"
    note.write_text("# A note\n\nThe violet lamp is in the attic.\n", encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                                 " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            reply = page.goto(server)
            assert "default-src 'none'" in reply.headers["content-security-policy"]
            expect(page.locator("body")).to_have_attribute("data-state", "ready")
            page.set_input_files("#upload", str(note))  # the page's own upload: same origin, allowed
            expect(page.locator("#doc-select")).to_have_value("csp-note.md", timeout=60_000)
            page.fill("#question", "Where is the violet lamp?")
            page.click("#ask-button")
            expect(page.locator("body")).to_have_attribute("data-state", "done", timeout=60_000)
            expect(page.locator("#doc-view mark.span").first).to_contain_text("violet lamp")
            assert float(page.eval_on_selector("#gauge-fill", "e => e.getBoundingClientRect().width")) > 0
            assert page.evaluate("window.__csp") == []
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()

