"""The answer-from-context prompt and the checks run on replies."""

from __future__ import annotations

import pytest

from hybridctx.datatypes import PackedContext
from hybridctx.errors import ConfigError
from hybridctx.llms import UNANSWERABLE, build_messages, cited_markers, says_unanswerable

CONTEXT = "[1] notes\nThe key is under the mat.\n\n[2] diary\nThe door is blue."


def test_build_messages_puts_context_then_question() -> None:
    system, user = build_messages("Where is the key?", CONTEXT)
    assert system["role"] == "system" and user["role"] == "user"
    assert UNANSWERABLE in system["content"] and "[1]" in system["content"]
    assert user["content"].startswith("Context (passages retrieved") and user["content"].endswith("Answer:")
    assert user["content"].index("The key is under the mat.") < user["content"].index("Where is the key?")


def test_full_mode_and_packed_context() -> None:
    packed = PackedContext(query="q", budget=100, tokenizer="cl100k_base", tokens=20, context=CONTEXT, spans=())
    system, user = build_messages("Where is the key?", packed, mode="full")
    assert user["content"].startswith("Context (the full documents):") and CONTEXT in user["content"]
    with pytest.raises(ConfigError, match="unknown prompt mode 'summary'"):
        build_messages("q", CONTEXT, mode="summary")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "answer",
    [
        UNANSWERABLE,
        "i cannot answer from the given context",
        "Sorry. I cannot answer from the given context.",
        "",
        "The context does not mention where the key is.",
        "The provided passages don't contain that information.",
        "I can't determine this from the context.",
        "I am unable to answer that based on the passages [1].",
        "This is not mentioned in the given context.",
        "There is no information about the key in the text.",
        "I don't know.",
        "上下文中没有提到钥匙在哪里。",
    ],
)
def test_says_unanswerable_recognises_refusals(answer: str) -> None:
    assert says_unanswerable(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "The key is under the mat [1].",
        "Under the mat [1]. The context does not mention who put it there.",
        "Alice cannot answer the riddle, says the Hatter [2].",
        "No, the door is blue [2].",
    ],
)
def test_says_unanswerable_leaves_answers_alone(answer: str) -> None:
    assert not says_unanswerable(answer)


def test_cited_markers() -> None:
    assert cited_markers("Under the mat [2]. Blue [1][2], see [3, 4] and [5-6].") == [2, 1, 3, 4, 5, 6]
    assert cited_markers("In [1999] it was [ 2 ].", limit=3) == [2]
    assert cited_markers("no citations") == []


def test_importing_llms_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, hybridctx.llms;"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'tiktoken', 'httpx'});"
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
