"""Encoding on a local 2-CPU Ray cluster gives the in-process vectors, and one identical index.

Slow (Ray starts in ~5-30 s and each actor loads the encoder) and skipped
without ray, which is not in the ``dev`` extra (``pip install 'hybridctx[ray]'``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridctx.ingest.segmentation import split_sentences

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_cluster():
    """One local cluster for the module; each test starts and stops its own actors."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def corpus(alice_text: str) -> list[tuple[str, str]]:
    # Documents of unequal length, so shards and batches differ from the single-process run.
    cuts = [0, 2500, 9000, 11000, 18000]
    return [(f"alice-{i}", alice_text[a:b]) for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]


def test_vectors_equal_in_process(encoder, local_cluster, corpus) -> None:
    from hybridctx.embeddings.ray_encoding import RayLandmarkEncoder

    docs = [(text, split_sentences(text)) for _, text in corpus]
    local = encoder.encode_documents(docs, show_progress=False)
    with RayLandmarkEncoder(encoder) as remote:
        assert remote.num_actors == 2
        assert remote.identity == encoder.identity and remote.dim == encoder.dim
        got = remote.encode_documents(docs)
        np.testing.assert_allclose(remote.encode_queries(["the White Rabbit"]),
                                   encoder.encode_queries(["the White Rabbit"]), atol=1e-6)
    assert len(got) == len(local)
    for a, b in zip(local, got):
        assert a.shape == b.shape and b.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_cli_ray_index_equals_single_process(encoder, local_cluster, corpus, tmp_path: Path) -> None:
    from hybridctx.cli import main
    from hybridctx.facade import HybridContext
    from hybridctx.indexers import LandmarkStore

    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps({"doc_id": d, "text": t}) + "\n" for d, t in corpus), encoding="utf-8")
    HybridContext.build(source, tmp_path / "single", encoder=encoder, show_progress=False)
    # --ray with no address joins the cluster this process already started.
    assert main(["index", str(source), "--index", str(tmp_path / "ray"), "--ray", "--device", "cpu",
                 "--no-progress", "--json"]) == 0
    single = LandmarkStore.load(tmp_path / "single")
    spread = LandmarkStore.load(tmp_path / "ray")
    try:
        assert spread.counts() == single.counts()
        assert spread.doc_ids() == single.doc_ids()
        for doc_id in single.doc_ids():
            assert spread.text(doc_id) == single.text(doc_id)
            a, b = single.landmarks_of(doc_id), spread.landmarks_of(doc_id)
            np.testing.assert_array_equal(a.rows, b.rows)
            np.testing.assert_array_equal(a.starts, b.starts)
            np.testing.assert_array_equal(a.ends, b.ends)
            np.testing.assert_allclose(spread.vectors_for_rows(b.rows), single.vectors_for_rows(a.rows), atol=1e-5)
    finally:
        single.close()
        spread.close()
