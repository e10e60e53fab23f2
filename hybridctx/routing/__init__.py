"""Stage 4, routing and answering: full context or retrieval per question, priced; then the answer.

The cost router, model profiles (kept as data in ``profiles_data``), the session ledger of warm
prompt caches, and answering (route → context → LLM → escalate).
"""
