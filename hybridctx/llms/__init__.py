"""Generation: the ``LLM`` protocol, its backends, and the answer-from-context prompt.

Why a package: an OpenAI-compatible HTTP client (vLLM, SGLang, llama.cpp server,
Ollama, Kimi, OpenAI) and a local transformers backend (SmolLM2 embedded) stand
behind one small protocol, with one prompt and one way to read answers.
Importing it loads the standard library only; torch and transformers load when
a local model is built.
"""

from __future__ import annotations

from hybridctx.llms.local import LocalTransformersLLM, default_local_llm, smollm2_path
from hybridctx.llms.openai_compat import OpenAICompatibleLLM
from hybridctx.llms.prompts import UNANSWERABLE, build_messages, cited_markers, says_unanswerable
from hybridctx.llms.protocol import LLM, Completion, Message
from hybridctx.llms.registry import load_llm, register_llm

__all__ = [
    "LLM",
    "UNANSWERABLE",
    "Completion",
    "LocalTransformersLLM",
    "Message",
    "OpenAICompatibleLLM",
    "build_messages",
    "cited_markers",
    "default_local_llm",
    "load_llm",
    "register_llm",
    "says_unanswerable",
    "smollm2_path",
]
