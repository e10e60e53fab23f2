"""hybridctx: chunk-free landmark retrieval, exact-budget packing and cost routing."""
