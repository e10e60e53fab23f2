"""``hybridctx eval qa --llm`` and ``eval route --llm`` against a real OpenAI-compatible server on 127.0.0.1.

The server answers from a script, in the order the evaluation asks: each policy
in turn, its questions in file order. The real encoder, index and prompt are
used; only the model is scripted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loopback_server import Reply, completion_body

from hybridctx.cli import main
from hybridctx.eval.answer_scoring import chosen_option, exact_match, score_answer, token_f1
from hybridctx.llms.prompts import UNANSWERABLE

pytestmark = pytest.mark.slow

FACT = "The lighthouse keeper of Skerry Point was Margit Halvorsen, who lit the lamp every dusk for forty years."
STORY = ("The ferry to the island left at seven. " * 90 + FACT + " " + "Gulls circled the harbour all afternoon. " * 90)
QUESTIONS = [
    {"id": "right", "question": "Who was the lighthouse keeper of Skerry Point?", "answers": ["Margit Halvorsen"]},
    {"id": "wrong", "question": "How many years did the keeper light the lamp?", "answers": ["forty years"]},
    {"id": "mc-right", "question": "What did the keeper light?", "answers": ["the lamp"],
     "options": '["(A) a candle", "(B) the lamp", "(C) a fire"]', "answer_label": "B"},
    {"id": "mc-wrong", "question": "When was the lamp lit?", "answers": ["every dusk"],
     "options": ["(A) every dawn", "(B) at noon", "(C) every dusk"], "answer_label": "C"},
    {"id": "refused", "question": "What colour was the ferry?", "answers": ["white"]},
]


def _write(root: Path, ids: tuple[str, ...] | None = None) -> Path:
    folder = root / "isles"
    folder.mkdir(parents=True)
    start = STORY.index(FACT)
    (folder / "docs.jsonl").write_text(json.dumps({"doc_id": "story", "text": STORY}) + "\n", encoding="utf-8")
    lines = []
    for q in QUESTIONS:
        if ids is not None and q["id"] not in ids:
            continue
        record = {"doc_id": "story", **q}
        if q["id"] == "right":  # context gold too, so the row carries a recall
            record.update(evidence=[FACT], evidence_offsets=[[start, start + len(FACT)]])
        lines.append(json.dumps(record))
    (folder / "qa.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _reply(text: str, prompt_tokens: int = 700, completion_tokens: int = 9) -> Reply:
    return Reply(body=completion_body(text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens))


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return _write(tmp_path)


def test_eval_qa_llm_scores_right_wrong_choices_and_refusals(llm_server, data: Path, tmp_path: Path) -> None:
    llm_server.queue(_reply("Margit Halvorsen [1]."), _reply("Twelve."), _reply("(B) the lamp [1]"),
                     _reply("The answer is (A)."), _reply(UNANSWERABLE))
    out = tmp_path / "out"
    args = ["eval", "qa", "--data", str(data), "--llm", llm_server.base_url, "--model", "test-model",
            "--budgets", "512", "--limit", "0", "--out", str(out), "--answer-cache", str(tmp_path / "answers"),
            "--cache", str(tmp_path / "idx"), "--no-progress"]
    assert main(args) == 0
    report = json.loads((out / "answers.json").read_text(encoding="utf-8"))
    rows = {r["id"]: r for r in report["rows"]}
    assert report["policies"] == ["hybridctx@512"] and len(rows) == 5
    assert (rows["right"]["em"], rows["right"]["f1"]) == (1.0, 1.0)
    assert rows["right"]["recall"] == 1.0  # the fact was in the packed context
    assert (rows["wrong"]["em"], rows["wrong"]["f1"]) == (0.0, 0.0)
    assert (rows["mc-right"]["chosen"], rows["mc-right"]["choice_correct"]) == ("B", 1.0)
    assert (rows["mc-wrong"]["chosen"], rows["mc-wrong"]["choice_correct"]) == ("A", 0.0)
    assert rows["refused"]["refused"] and rows["refused"]["f1"] == 0.0
    assert not any(r["refused"] for k, r in rows.items() if k != "refused")
    totals = report["totals"]["isles"]["hybridctx@512"]
    assert totals["refusal_rate"] == pytest.approx(0.2) and totals["mc_accuracy"] == pytest.approx(0.5)
    assert totals["em"] == pytest.approx(0.2)  # "(B) the lamp" is no exact match of "the lamp"
    # Tokens as the server counted them, priced by the kimi profile ($0.60 / $2.50 per M).
    assert totals["prompt_tokens"] == 5 * 700 and totals["completion_tokens"] == 5 * 9
    assert totals["usd"] == pytest.approx(5 * (700 * 0.60 + 9 * 2.50) / 1e6)
    # The prompt is ask's: the question last, the packed passage in the context.
    sent = llm_server.chat_requests()[0].body["messages"]
    assert "Question: Who was the lighthouse keeper of Skerry Point?" in sent[1]["content"]
    assert FACT in sent[1]["content"] and UNANSWERABLE in sent[0]["content"]
    assert "(B) the lamp" in llm_server.chat_requests()[2].body["messages"][1]["content"]  # options asked
    assert (out / "answers.png").stat().st_size > 0 and "hybridctx@512" in (out / "answers.md").read_text()

    # A rerun answers from the cache: no request reaches the server, the same numbers come back.
    before = len(llm_server.chat_requests())
    assert main(args) == 0
    assert len(llm_server.chat_requests()) == before
    again = json.loads((out / "answers.json").read_text(encoding="utf-8"))
    first, second = report["totals"]["isles"]["hybridctx@512"], again["totals"]["isles"]["hybridctx@512"]
    assert second.pop("cached_calls") == 5 and first.pop("cached_calls") == 0 and second == first
    assert all(r["cached_calls"] == r["calls"] == 1 for r in again["rows"])


def test_eval_route_llm_counts_self_route_escalation(llm_server, tmp_path: Path) -> None:
    data = _write(tmp_path / "one", ("right",))
    # The story is ~1,600 tokens: more than twice the 512 budget, so the router retrieves.
    # The router's retrieval answer refuses, its escalation to full context answers. always-full
    # and always-retrieve send the very prompts the router sent: answered from the cache.
    llm_server.queue(_reply(UNANSWERABLE), _reply("Margit Halvorsen."))
    out = tmp_path / "route"
    assert main(["eval", "route", "--data", str(data), "--llm", llm_server.base_url, "--model", "test-model",
                 "--budget", "512", "--limit", "0", "--out", str(out), "--answer-cache", str(tmp_path / "answers"),
                 "--cache", str(tmp_path / "idx"), "--no-progress"]) == 0
    report = json.loads((out / "answers.json").read_text(encoding="utf-8"))
    # Only the question with context gold is routed in route.json; every answerable one is answered.
    right = {r["policy"]: r for r in report["rows"] if r["id"] == "right"}
    assert right["router"]["escalated"] and right["router"]["mode"] == "full" and right["router"]["calls"] == 2
    assert right["router"]["first_refused"] and not right["router"]["refused"] and right["router"]["f1"] == 1.0
    assert right["always-full"]["mode"] == "full" and not right["always-full"]["escalated"]
    assert right["always-retrieve"]["refused"] and right["always-retrieve"]["calls"] == 1
    assert right["always-retrieve"]["f1"] == 0.0
    assert right["always-full"]["cached_calls"] == right["always-retrieve"]["cached_calls"] == 1
    assert right["router"]["cached_calls"] == 0 and len(llm_server.chat_requests()) == 2
    route = json.loads((out / "route.json").read_text(encoding="utf-8"))
    assert [r["router"]["mode"] for r in route["rows"]] == ["retrieval"]
    # The escalation's second request carried the whole story.
    requests = llm_server.chat_requests()
    assert STORY.strip()[:200] in requests[1].body["messages"][1]["content"]
    assert "retrieved" in requests[0].body["messages"][1]["content"] and "full documents" in \
        requests[1].body["messages"][1]["content"]
    totals = report["totals"]["isles"]
    assert totals["router"]["escalations"] >= 1 and totals["always-retrieve"]["escalations"] == 0
    assert totals["router"]["calls"] == totals["router"]["questions"] + totals["router"]["escalations"]
    assert "escalated" in (out / "answers.md").read_text(encoding="utf-8")


def test_scoring_rules() -> None:
    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert token_f1("in Paris, France", ["Paris"]) == pytest.approx(0.5)  # P 1/3, R 1
    assert token_f1("光荣和任天堂", ["光荣和ω-force"]) == pytest.approx(2 * 3 / 6 * 3 / 9 / (3 / 6 + 3 / 9))
    assert exact_match("6.5亿元", ["6.5亿元。"]) == 1.0
    options = ["(A) a candle", "(B) the lamp", "(C) a fire"]
    assert chosen_option("I think the lamp", options) == "B"
    assert chosen_option("Answer: C", options) == "C"
    # An unanswerable question is answered right by a refusal, and wrong by anything else.
    assert score_answer(UNANSWERABLE, [], refused=True, unanswerable=True).f1 == 1.0
    assert score_answer("Blue.", [], refused=False, unanswerable=True).f1 == 0.0


@pytest.mark.parametrize("extra, message", [
    (["--llm", "http://127.0.0.1:9/v1"], "needs a model name"),
    (["--llm", "local", "--answer-tokens", "0"], "--answer-tokens 0 must be at least 1"),
])
@pytest.mark.parametrize("verb", ["qa", "route"])
def test_bad_llm_options_are_one_line_exit_2(verb: str, extra: list[str], message: str, data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", verb, "--data", str(data), "--out", str(tmp_path / "out"), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing was run or written
