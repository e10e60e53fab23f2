"""A small web app over hybridctx: pick or upload a document, ask a question, and
see the route decision, the retrieved spans in place, the packed tokens and the
cited answer.

Why an example and not part of the library: a web server is a deployment
choice, and FastAPI is an optional extra (``pip install 'hybridctx[webapp]'``).
Run it with ``python -m examples.webapp`` from the repository root; the modules
are ``state`` (the index and the LLM), ``qa`` (one question to one JSON reply)
and ``app`` (the HTTP routes), plus one static page under ``static/``.
"""
