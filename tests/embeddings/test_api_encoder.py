"""The API encoder end to end against a real /v1/embeddings server on 127.0.0.1 (MiniLM vectors):
a planted fact, the manifest, retries (429 + Retry-After, 500, slow), the cache, the rate limit,
the price check of ``hybridctx index --max-usd``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")  # the server's vectors (the eval extra; dev has it)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embedding_server import EmbeddingServer, Fault  # noqa: E402

from hybridctx.embeddings.api_client import EmbeddingsClient, RateLimiter, embeddings_url  # noqa: E402
from hybridctx.embeddings.vector_cache import VectorCache  # noqa: E402
from hybridctx.errors import ConfigError, EncoderError  # noqa: E402

pytestmark = pytest.mark.slow

FACT = "The vault under the old mill opens with the code 4417, which only the miller's daughter knows."
FILLER = [
    "The river ran fast in spring and slow in late summer, when the wheel turned lazily.",
    "Farmers brought their grain on carts and waited in line along the muddy road.",
    "In winter the pond froze and children skated beside the silent wheel.",
    "A new road was built in the year of the great flood, far from the water.",
    "The miller kept a ledger of every sack, written in a careful, narrow hand.",
]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddingServer]:
    with EmbeddingServer() as srv:
        yield srv


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HYBRIDCTX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _client(server: EmbeddingServer, tmp_path: Path, **kw) -> tuple[EmbeddingsClient, list[float]]:
    slept: list[float] = []  # recorded, not slept: the tests take no time waiting
    client = EmbeddingsClient(server.base_url, "minilm", cache=VectorCache("t", tmp_path / "v.sqlite"),
                              sleep=slept.append, **kw)
    return client, slept


def _corpus(tmp_path: Path) -> Path:
    text = " ".join(FILLER * 4 + [FACT] + FILLER[::-1] * 4)
    path = tmp_path / "mill.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_api_index_retrieves_the_planted_fact_and_reopens_with_its_encoder(
        server: EmbeddingServer, tmp_path: Path, cache_dir: Path) -> None:
    from hybridctx import HybridContext

    settings = {"model": f"api:{server.base_url}#minilm", "tokenizer": "all-MiniLM-L6-v2", "window": 96,
                "stride": 24}
    report = HybridContext.build([_corpus(tmp_path)], tmp_path / "idx", encoder=settings, show_progress=False)
    identity = json.loads((tmp_path / "idx" / "manifest.json").read_text())["encoder"]
    assert identity["backend"] == "pooled" and identity["name"] == settings["model"]
    assert (identity["window"], identity["stride"], identity["dim"]) == (96, 24, 384)
    assert report.landmarks == 4 * 5 * 2 + 1
    with HybridContext.open(tmp_path / "idx") as hc:
        assert type(hc.encoder).__name__ == "PooledLandmarkEncoder"
        # The manifest adds the settings that built the encoder (embeddings/registry.py) to its identity.
        assert identity["settings"]["model"] == settings["model"] and identity["settings"]["stride"] == 24
        assert hc.encoder.identity == {k: v for k, v in identity.items() if k != "settings"}
        packed = hc.retrieve("What is the code that opens the vault?", budget=120, mode="dense")
    assert "4417" in packed.context


def test_429_with_retry_after_then_success(server: EmbeddingServer, tmp_path: Path) -> None:
    clean, _ = _client(server, tmp_path / "a")
    expected = clean.embed(["a first text", "a second text"])
    client, slept = _client(server, tmp_path / "b")
    server.faults.append(Fault(429, retry_after="0.3"))
    got = client.embed(["a first text", "a second text"])
    assert slept == [0.3]  # the server's Retry-After, not the client's own backoff
    assert client.stats.retries == 1 and client.stats.requests == 2
    assert np.allclose(got, expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_500s_back_off_exponentially_then_fail_with_the_status(server: EmbeddingServer, tmp_path: Path) -> None:
    client, slept = _client(server, tmp_path, max_retries=2, backoff_s=0.1)
    server.faults.append(Fault(500))
    assert client.embed(["recovers after one 500"]).shape == (1, 384)
    assert len(slept) == 1 and 0.05 <= slept[0] <= 0.1
    server.faults.extend([Fault(503), Fault(500), Fault(502)])
    with pytest.raises(EncoderError, match=r"failed 3 times; last: HTTP 502"):
        client.embed(["never answered"])
    assert len(slept) == 3 and 0.05 <= slept[1] <= 0.1 and 0.1 <= slept[2] <= 0.2  # doubling per batch, jittered


def test_a_slow_server_times_out_and_the_retry_succeeds(server: EmbeddingServer, tmp_path: Path) -> None:
    # 5 s of patience against 30 s of silence (the server answers each request in its own thread and
    # stops waiting when it shuts down); an unhindered answer of one text takes well under a second,
    # and the warm-up call first means no model load falls inside the timed requests even on a CPU
    # shared with other jobs (2 s flaked once at a load average of 9).
    client, slept = _client(server, tmp_path, timeout_s=5.0, backoff_s=0.01)
    client.embed(["a warm-up call, answered at once"])
    server.faults.append(Fault(200, delay_s=30.0))
    vectors = client.embed(["answered on the second try"])
    assert vectors.shape == (1, 384) and client.stats.retries == 1
    server.faults.extend([Fault(200, delay_s=30.0)] * 2)
    client.max_retries = 1
    with pytest.raises(EncoderError, match="no reply"):
        client.embed(["slow twice"])


def test_a_refused_request_is_not_retried_and_names_no_key(server: EmbeddingServer, tmp_path: Path) -> None:
    client, slept = _client(server, tmp_path, api_key="sk-secret-key-123456")
    server.faults.append(Fault(401))
    with pytest.raises(EncoderError, match="refused the request.*HTTP 401.*API key") as err:
        client.embed(["needs a key"])
    assert slept == [] and "sk-secret" not in str(err.value) and "sk-secret" not in repr(client)
    client.embed(["the key travels as a bearer token"])
    assert server.seen[-1].authorization == "Bearer sk-secret-key-123456"


def test_cached_texts_are_never_sent_twice(server: EmbeddingServer, tmp_path: Path) -> None:
    client, _ = _client(server, tmp_path, batch_size=2)
    before = server.texts_embedded
    first = client.embed(["one", "two", "three", "two"])
    assert server.texts_embedded - before == 3  # the repeat is sent once, in batches of two
    again, _ = _client(server, tmp_path, batch_size=2)  # a new client (process) on the same cache file
    assert np.array_equal(again.embed(["three", "one"]), first[[2, 0]])
    assert server.texts_embedded - before == 3 and again.stats.cache_hits == 2


def test_reindexing_pays_nothing_and_the_estimate_says_so(server: EmbeddingServer, tmp_path: Path,
                                                          cache_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from hybridctx.cli import main

    corpus = _corpus(tmp_path)
    spec = f"api:{server.base_url}#minilm"
    args = [str(corpus), "--encoder", spec, "--window", "64", "--stride", "16", "--no-progress",
            "--usd-per-mtok", "0.02"]
    assert main(["index", "--index", str(tmp_path / "one"), *args]) == 0
    line = capsys.readouterr().err
    assert "windows" in line and "(0 of them cached" in line and "$0.0000" in line
    sent = server.texts_embedded
    assert main(["index", "--index", str(tmp_path / "two"), *args]) == 0  # a new index, same windows
    assert server.texts_embedded == sent
    assert ": 0 tokens, $0.0000" in capsys.readouterr().err


def test_max_usd_refuses_before_anything_is_sent(server: EmbeddingServer, tmp_path: Path, cache_dir: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    from hybridctx.cli import main

    requests = len(server.seen)
    code = main(["index", str(_corpus(tmp_path)), "--index", str(tmp_path / "idx"), "--encoder",
                 f"api:{server.base_url}#minilm", "--usd-per-mtok", "1000", "--max-usd", "0.01", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("hybridctx index: error: indexing would embed")
    assert "more than --max-usd 0.01; nothing was sent" in err[-1]
    assert len(server.seen) == requests and not (tmp_path / "idx" / "manifest.json").exists()
    code = main(["index", str(_corpus(tmp_path)), "--index", str(tmp_path / "idx"), "--encoder",
                 f"api:{server.base_url}#unpriced-model", "--max-usd", "1", "--no-progress"])
    assert code == 2 and "price per token is unknown" in capsys.readouterr().err


def test_pooled_flags_need_a_pooled_encoder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hybridctx.cli import main

    (tmp_path / "a.txt").write_text("Some text.", encoding="utf-8")
    assert main(["index", str(tmp_path / "a.txt"), "--index", str(tmp_path / "i"), "--stride", "8"]) == 2
    assert "--stride apply to pooled encoders only" in capsys.readouterr().err


def test_rate_limiter_spaces_requests_and_tokens() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    per_second = RateLimiter(60, clock=lambda: now[0], sleep=sleep)  # one a second
    for _ in range(4):
        per_second.acquire()
    assert slept == [1.0, 1.0, 1.0]
    tokens = RateLimiter(6000, clock=lambda: now[0], sleep=sleep)  # 100 tokens a second
    tokens.acquire(300)
    tokens.acquire(50)
    assert slept[-1] == pytest.approx(3.0)
    with pytest.raises(ConfigError):
        RateLimiter(0)


def test_client_rate_limit_is_applied_per_request(server: EmbeddingServer, tmp_path: Path) -> None:
    # A clock that stands still: the 2nd request must wait 1 s, the 3rd 2 s (60 a minute, batches of one).
    client, slept = _client(server, tmp_path, batch_size=1, requests_per_minute=60, clock=lambda: 50.0)
    client.embed(["r1", "r2", "r3"])
    assert slept == [1.0, 2.0] and client.stats.waited_s == 3.0


@pytest.mark.parametrize("url, expected", [
    ("http://h:8000/v1", "http://h:8000/v1/embeddings"),
    ("http://h:8000/v1/", "http://h:8000/v1/embeddings"),
    ("https://api.example.com/v1/embeddings", "https://api.example.com/v1/embeddings"),
    ("http://h:8000", "http://h:8000/v1/embeddings"),
])
def test_embeddings_url(url: str, expected: str) -> None:
    assert embeddings_url(url) == expected


@pytest.mark.parametrize("spec", ["api:nohash", "api:ftp://x#m", "api:http://h/v1#"])
def test_bad_api_specs_are_config_errors(spec: str) -> None:
    from hybridctx.embeddings.pooled import PooledLandmarkEncoder

    with pytest.raises(ConfigError):
        _ = PooledLandmarkEncoder({"model": spec}).dim
