"""What the LangChain and LlamaIndex examples share: offline hubs, the Alice book, the command line, the index.

Not an example itself. The examples import it by name (``from _common import ...``):
``python examples/X.py`` puts ``examples/`` first on the import path.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BOOK = Path(__file__).resolve().parents[1] / "hybridctx" / "samples" / "alice_in_wonderland.txt"


def pipeline_args(description: str, argv: list[str] | None, *, no_llm_help: str) -> argparse.Namespace:
    """The options both plug-in examples take: budget, index, LLM, model, profile, ``--no-llm``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--budget", type=int, default=600, help="tokens of the packed context")
    parser.add_argument("--index", type=Path, help="index directory (built if missing; default: temporary)")
    parser.add_argument("--llm", default="local", help="'local' (SmolLM2) or an OpenAI-compatible base URL")
    parser.add_argument("--model", help="model name the server knows (with a URL)")
    parser.add_argument("--profile", default="smollm2-135m-cpu", help="model profile the router costs")
    parser.add_argument("--no-llm", action="store_true", help=no_llm_help)
    return parser.parse_args(argv)


def alice_index(index: Path | None, tmp: str) -> Path:
    """``index``, or ``alice.idx`` in the temporary folder ``tmp``; built from :data:`BOOK` if missing."""
    from hybridctx import HybridContext

    index = index or Path(tmp) / "alice.idx"
    if not (index / "manifest.json").exists():
        print(HybridContext.build([BOOK], index, show_progress=False).summary())
    return index
