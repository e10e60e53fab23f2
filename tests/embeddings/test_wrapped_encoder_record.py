"""An index built through a wrapping encoder records the encoder inside it.

The eval window cache (:class:`CachedWindowEncoder`) and the Ray encoder
(:class:`RayLandmarkEncoder`) stand in for the encoder they wrap; the manifest
of an index built through one must name the same backend and settings as a
plain build with the wrapped encoder, so that ``HybridContext.open`` rebuilds
that encoder (an empty record would reopen it as an old, unrecorded index).
The Ray test is slow and skips without ray (``pip install 'hybridctx[ray]'``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridctx.embeddings.registry import encoder_record, load_encoder
from hybridctx.facade import HybridContext

TEXT = ("The lighthouse keeper rang the brass bell at dusk. Ships in the harbour answered with horns. "
        "The cartographer drew the northern reef in red ink.\n\nA storm broke the pier in March. "
        "The baker on Quay Street sold rye bread to the sailors. The reef map hung in the tavern.")


@pytest.fixture(scope="module")
def windowed():
    """The packaged encoder through the registry, with a setting off its default that the record must carry."""
    return load_encoder({"device": "cpu", "overlap": 16})


def _build(tmp_path: Path, name: str, encoder) -> dict:
    src = tmp_path / "harbour.txt"
    src.write_text(TEXT, encoding="utf-8")
    index = tmp_path / name
    HybridContext.build([src], index, encoder=encoder, show_progress=False)
    return json.loads((index / "manifest.json").read_text(encoding="utf-8"))["encoder"]


def _assert_same_record(tmp_path: Path, name: str, plain: dict, wrapped: dict, built_with) -> None:
    assert plain["backend"] == "transformers" and plain["settings"]["overlap"] == 16
    assert wrapped == plain  # identity, backend and settings alike
    with HybridContext.open(tmp_path / name, device="cpu") as hc:
        assert encoder_record(hc.encoder)["backend"] == plain["backend"]
        assert hc.encoder.config.overlap == 16  # the recorded setting, not the default (32)
        assert dict(hc.encoder.identity) == dict(built_with.identity)


@pytest.mark.slow  # builds and reopens two real indexes: the full tier only
def test_an_index_built_through_the_window_cache_records_the_plain_build(tmp_path, windowed) -> None:
    from hybridctx.eval.window_cache import CachedWindowEncoder

    plain = _build(tmp_path, "plain", windowed)
    cache = CachedWindowEncoder(windowed)
    cached = _build(tmp_path, "cached", cache)
    assert cache.windows_encoded > 0  # the cache, not the base, read the document
    _assert_same_record(tmp_path, "cached", plain, cached, windowed)


def test_the_window_cache_passes_on_any_base_record(encoder) -> None:
    from hybridctx.eval.niah import make_methods
    from hybridctx.eval.window_cache import CachedWindowEncoder

    # A windowed encoder constructed directly (the session fixture) has its class's record.
    assert encoder_record(CachedWindowEncoder(encoder)) == encoder_record(encoder) != {}
    assert encoder_record(CachedWindowEncoder(object())) == {}  # no record to pass on: none invented
    # The NIAH runner's default encoder comes from the registry, so its indexes record it too.
    (method,) = make_methods(["hybridctx"])
    assert encoder_record(method._get_encoder())["backend"] == "transformers"


@pytest.mark.slow
@pytest.mark.heavy
def test_an_index_built_on_ray_records_the_plain_build(tmp_path, windowed) -> None:
    ray = pytest.importorskip("ray")
    from hybridctx.embeddings.ray_encoding import RayLandmarkEncoder

    plain = _build(tmp_path, "plain", windowed)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        with RayLandmarkEncoder(windowed, num_actors=1) as remote:  # its actor builds through load_encoder
            spread = _build(tmp_path, "ray", remote)
    finally:
        if started:
            ray.shutdown()
    _assert_same_record(tmp_path, "ray", plain, spread, windowed)
