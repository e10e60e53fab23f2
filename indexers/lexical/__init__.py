"""Lexical search: BM25 over landmark sentences and its terms, English and Chinese."""
