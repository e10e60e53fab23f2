"""The gateway shares the session ledger beside each index (issue 14): a scope sent in full is warm next time."""

from __future__ import annotations

from loopback_server import Reply, completion_body
from serve_helpers import FORCE_FULL, client_for

from hybridctx.routing.session_ledger import ledger_path

QUESTION = "What colour is the garden gate?"


def _ask(client, messages):
    response = client.chat.completions.create(model="records", messages=messages,
                                              extra_body={"hybridctx": FORCE_FULL})
    return response.model_extra["hybridctx"]["route"]


def test_a_full_send_warms_the_scope_for_the_next_single_turn_question(gateway, llm_server, index_dirs) -> None:
    ledger_path(index_dirs["records"]).unlink(missing_ok=True)
    client = client_for(gateway())
    for _ in range(5):
        llm_server.queue(Reply(body=completion_body("Cobalt blue [1].")))
    first = _ask(client, [{"role": "user", "content": QUESTION}])
    assert first["mode"] == "full" and first["cache"]["scope_warm"] is False
    assert ledger_path(index_dirs["records"]).is_file()
    second = _ask(client, [{"role": "user", "content": "Who keeps the harbour log?"}])
    assert second["cache"] == {"applies": "warm", "scope_warm": True, "expected_questions": 1}
    full = second["estimates"]["full"]
    assert full["usd"] == full["warm"]["usd"] < full["cold"]["usd"]  # gpt-4o-mini: cached input at half price
    # Earlier turns sit before the context in the chat, so the cached prefix is not the same: priced cold.
    chat = _ask(client, [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi."},
                         {"role": "user", "content": QUESTION}])
    assert chat["cache"]["scope_warm"] is False and chat["cache"]["applies"] == "cold"
    # Another client's system prompt is another prefix: cold the first time, warm the second.
    system = [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": QUESTION}]
    assert _ask(client, system)["cache"]["scope_warm"] is False
    assert _ask(client, system)["cache"]["scope_warm"] is True
