"""FaissVectorIndex: add/search/remove per kind, filtering, persistence."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.errors import ConfigError, InputError
from hybridctx.indexers.vectors.faiss_index import FaissVectorIndex
from hybridctx.indexers.vectors.protocol import VectorIndex

pytestmark = pytest.mark.slow

faiss = pytest.importorskip("faiss")


def unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(q: np.ndarray, x: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    n, d = 5000, 32
    return {"x": unit(n, d, 1), "ids": np.arange(n, dtype=np.int64) * 3 + 5, "q": unit(40, d, 2)}


def test_meets_protocol() -> None:
    assert isinstance(FaissVectorIndex(8), VectorIndex)


@pytest.mark.parametrize(
    ("kind", "min_recall"),
    [("Flat", 1.0), ("HNSW32", 0.9), ("IVF32,Flat", 0.6), ("IVF32,PQ8", 0.5)],
)
def test_add_search_remove(data: dict[str, np.ndarray], kind: str, min_recall: float) -> None:
    x, ids, q = data["x"], data["ids"], data["q"]
    index = FaissVectorIndex(x.shape[1], kind)
    for lo in range(0, len(ids), 1000):  # several adds, as documents arrive
        index.add(ids[lo : lo + 1000], x[lo : lo + 1000])
    assert len(index) == len(ids)
    truth = exact_top(q, x, ids, 10)
    scores, found = index.search(q, 10)
    assert scores.shape == found.shape == (len(q), 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    r = recall(found, truth)
    print(f"{kind}: recall@10 vs exact on 5k random vectors = {r:.3f}")
    assert r >= min_recall
    # Scores are exact inner products for every kind (approximate ones are re-scored).
    exact = np.einsum("qd,qkd->qk", q, index.vectors(found.reshape(-1)).reshape(len(q), 10, -1))
    np.testing.assert_allclose(scores, exact, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)

    gone = truth[:, 0]
    assert index.remove(gone) == len(np.unique(gone))
    assert index.remove(gone) == 0
    _, after = index.search(q, 10)
    assert not np.isin(after, gone).any()
    assert len(index) == len(ids) - len(np.unique(gone))


@pytest.mark.parametrize("kind", ["Flat", "HNSW32", "IVF32,Flat"])
def test_allowed_ids_match_brute_force(data: dict[str, np.ndarray], kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    x, ids, q = data["x"], data["ids"], data["q"]
    index = FaissVectorIndex(x.shape[1], kind)
    index.add(ids, x)
    rng = np.random.default_rng(3)
    pick = np.sort(rng.choice(len(ids), 700, replace=False))
    allowed = np.concatenate([ids[pick], [-7, 10**9]])  # unknown ids are ignored
    truth_s = np.sort(q @ x[pick].T, axis=1)[:, ::-1][:, :10]
    truth_i = exact_top(q, x[pick], ids[pick], 10)
    # Small sets: exact numpy path; large threshold 0 forces the FAISS selector path.
    for limit in (FaissVectorIndex.exact_filter_max, 0):
        monkeypatch.setattr(FaissVectorIndex, "exact_filter_max", limit)
        scores, found = index.search(q, 10, allowed_ids=allowed)
        assert np.isin(found, ids[pick]).all()
        if limit or kind == "Flat":
            np.testing.assert_array_equal(found, truth_i)
            np.testing.assert_allclose(scores, truth_s, atol=1e-5)
        else:
            assert recall(found, truth_i) >= 0.5


def test_padding_when_fewer_than_k() -> None:
    index = FaissVectorIndex(8)
    x = unit(3, 8)
    index.add(np.array([10, 11, 12]), x)
    scores, found = index.search(x[:1], 5)
    assert found[0, :3].tolist()[0] == 10 and sorted(found[0, :3]) == [10, 11, 12]
    assert found[0, 3:].tolist() == [-1, -1] and np.isneginf(scores[0, 3:]).all()
    scores, found = index.search(x[:1], 5, allowed_ids=np.array([12]))
    assert found[0].tolist() == [12, -1, -1, -1, -1]
    empty = FaissVectorIndex(8)
    assert empty.search(x, 2)[1].tolist() == [[-1, -1]] * 3


def test_bad_input_is_refused() -> None:
    index = FaissVectorIndex(8)
    index.add(np.array([1, 2]), unit(2, 8))
    with pytest.raises(InputError, match="already"):
        index.add(np.array([2]), unit(1, 8))
    with pytest.raises(InputError, match="shape"):
        index.add(np.array([3]), unit(1, 9))
    with pytest.raises(InputError, match="repeat"):
        index.add(np.array([4, 4]), unit(2, 8))
    with pytest.raises(InputError):
        index.search(unit(1, 8), 0)
    with pytest.raises(ConfigError, match="index kind"):
        FaissVectorIndex(8, "NoSuchIndex12")


def test_ivf_with_too_few_vectors_suggests_flat(tmp_path: Path) -> None:
    index = FaissVectorIndex(16, "IVF256,PQ4")
    index.add(np.arange(100), unit(100, 16))
    with pytest.raises(ConfigError, match="Flat"):
        index.search(unit(1, 16), 3)
    with pytest.raises(ConfigError, match="at least 256"):
        index.save(tmp_path)


def test_hnsw_deletions_persist_and_rebuild(tmp_path: Path) -> None:
    x = unit(600, 16, 4)
    index = FaissVectorIndex(16, "HNSW16")
    index.add(np.arange(600), x)
    index.remove(np.arange(0, 100))
    index.save(tmp_path)
    loaded = FaissVectorIndex.load(tmp_path)
    assert len(loaded) == 500
    _, found = loaded.search(x[:100], 5)
    assert (found >= 100).all()
    loaded.remove(np.arange(100, 300))  # over a quarter dead: graph rebuilt
    _, found = loaded.search(x[300:310], 1)
    assert found[:, 0].tolist() == list(range(300, 310))


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(0, 40),
    d=st.sampled_from([4, 16]),
    kind=st.sampled_from(["Flat", "HNSW8"]),
    seed=st.integers(0, 2**16),
    n_removed=st.integers(0, 10),
)
def test_save_load_round_trip(tmp_path: Path, n: int, d: int, kind: str, seed: int, n_removed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(10_000, n, replace=False)).astype(np.int64)
    x = unit(n, d, seed)
    index = FaissVectorIndex(d, kind)
    perm = rng.permutation(n)  # ids arrive out of order
    index.add(ids[perm], x[perm])
    index.remove(ids[:n_removed])
    out = tmp_path / uuid.uuid4().hex
    names = index.save(out)
    loaded = FaissVectorIndex.load(out)
    assert len(loaded) == len(index) and loaded.kind == kind and loaded.dim == d
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    if len(index):
        np.testing.assert_array_equal(loaded.vectors(index.ids()), index.vectors(index.ids()))
        q = unit(3, d, seed + 1)
        for a, b in zip(index.search(q, 4), loaded.search(q, 4)):
            np.testing.assert_array_equal(a, b)
    for name in names:
        if name.endswith(".npy"):
            np.load(out / name, allow_pickle=False)
    assert json.loads((out / "vectors.json").read_text())["count"] == len(index)


@pytest.mark.gpu
def test_gpu_search_matches_cpu() -> None:
    if faiss.get_num_gpus() == 0:
        pytest.skip("FAISS sees no GPU")
    x, q = unit(2000, 32, 5), unit(10, 32, 6)
    gpu, cpu = FaissVectorIndex(32, use_gpu=True), FaissVectorIndex(32, use_gpu=False)
    for index in (gpu, cpu):
        index.add(np.arange(2000), x)
    np.testing.assert_array_equal(gpu.search(q, 10)[1], cpu.search(q, 10)[1])


def test_auto_kind_turns_hnsw_when_large_and_back_when_small(
    data: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, ids, q = data["x"], data["ids"], data["q"]
    monkeypatch.setattr(FaissVectorIndex, "auto_hnsw_min", 2000)
    index = FaissVectorIndex(x.shape[1], "auto", use_gpu=False)
    index.add(ids[:1500], x[:1500])
    _, small = index.search(q, 10)
    assert index.factory == "Flat"  # below the threshold: exact
    np.testing.assert_array_equal(small, exact_top(q, x[:1500], ids[:1500], 10))

    index.add(ids[1500:], x[1500:])
    scores, found = index.search(q, 10)
    assert (index.kind, index.factory) == ("auto", "HNSW32")
    assert recall(found, exact_top(q, x, ids, 10)) >= 0.9
    exact = np.einsum("qd,qkd->qk", q, index.vectors(found.reshape(-1)).reshape(len(q), 10, -1))
    np.testing.assert_allclose(scores, exact, atol=1e-5)  # re-scored: true inner products

    index.save(tmp_path / "auto")
    meta = json.loads((tmp_path / "auto" / "vectors.json").read_text())
    assert (meta["kind"], meta["factory"]) == ("auto", "HNSW32")
    loaded = FaissVectorIndex.load(tmp_path / "auto", use_gpu=False)
    assert (loaded.kind, loaded.factory) == ("auto", "HNSW32")
    np.testing.assert_array_equal(loaded.search(q, 10)[1], found)

    # Shrinking below the threshold keeps the graph until half of it (no flapping) ...
    loaded.remove(ids[1800:])
    loaded.search(q, 10)
    assert loaded.factory == "HNSW32"
    # ... and below half it is exact again.
    loaded.remove(ids[900:1800])
    _, after = loaded.search(q, 10)
    assert loaded.factory == "Flat"
    np.testing.assert_array_equal(after, exact_top(q, x[:900], ids[:900], 10))


def test_auto_kind_loads_indexes_saved_before_it(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    # vectors.json written before "factory" existed: the kind is the factory.
    index = FaissVectorIndex(data["x"].shape[1], "HNSW16")
    index.add(data["ids"][:300], data["x"][:300])
    index.save(tmp_path / "old")
    meta_path = tmp_path / "old" / "vectors.json"
    meta = json.loads(meta_path.read_text())
    del meta["factory"]
    meta_path.write_text(json.dumps(meta))
    loaded = FaissVectorIndex.load(tmp_path / "old")
    assert (loaded.kind, loaded.factory) == ("HNSW16", "HNSW16")
