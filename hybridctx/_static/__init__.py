"""Data files shipped with hybridctx (tiktoken BPE ranks, so counting works offline)."""
