"""hybridctx in front of other stacks: an OpenAI-compatible routing gateway and an MCP server.

Why a subpackage: both verbs (``hybridctx serve``, ``hybridctx mcp``) speak a
wire protocol of their own on top of the same pipeline (route, retrieve or
send everything, pack, cite). Each module owns one job: reading a chat
request (``chat_request``), the answer to its last user turn
(``routing_turn``), the ``hybridctx`` extension a response carries
(``extension``), the OpenAI response shapes (``responses``), admission under a
concurrency bound (``admission``), the HTTP app (``gateway``), the indexes a
model name picks (``indexes``) and the MCP tools (``mcp``). Nothing here is
imported by ``import hybridctx``; FastAPI, uvicorn and the MCP SDK load only
when a server is built (``pip install 'hybridctx[serve]'``).
"""
