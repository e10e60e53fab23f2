"""Stage 2, retrieval: a question → landmark hits (dense, BM25, fused) → spans of whole sentences.

The retriever, rank fusion, span growth, query hints (where/when/how much a question asks
about), the per-document read cache and the LLM-free confidence signal.
"""
