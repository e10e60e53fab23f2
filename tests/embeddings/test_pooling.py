"""pool_window: ONNX Runtime's numpy states and PyTorch's tensors give the same landmark vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiers import examples

from hybridctx.embeddings.pooling import pool_window

torch = pytest.importorskip("torch")


@st.composite
def windows(draw):
    tokens = draw(st.integers(2, 64))
    cuts = sorted(draw(st.sets(st.integers(1, tokens - 1), max_size=min(12, tokens - 1))))
    bounds = [0, *cuts, tokens]
    seed = draw(st.integers(0, 2**31 - 1))
    states = np.random.default_rng(seed).standard_normal((tokens, 8)).astype(np.float32) * 3
    return states, np.asarray(bounds[:-1], np.int64), np.asarray(bounds[1:], np.int64)


@settings(max_examples=examples(100), deadline=None)
@given(windows(), st.booleans())
def test_numpy_and_torch_states_pool_alike(window, landmark) -> None:
    states, starts, ends = window
    served = pool_window(states, starts, ends, landmark=landmark)
    trained = pool_window(torch.from_numpy(states), starts, ends, landmark=landmark).numpy()
    assert isinstance(served, np.ndarray) and served.dtype == np.float32
    np.testing.assert_allclose(served, trained, rtol=1e-5, atol=1e-5)
    if not landmark:  # each vector is the mean of its own sentence's states
        for row, (a, b) in enumerate(zip(starts, ends)):
            np.testing.assert_allclose(served[row], states[a:b].mean(0), rtol=1e-4, atol=1e-4)
    else:
        np.testing.assert_array_equal(served, states[ends - 1])
