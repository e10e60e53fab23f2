"""``hybridctx eval qa`` end to end on a tiny corpus: files, hand-checked numbers, budgets, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

import pytest
from tiny_corpus import write_tiny_corpus

from hybridctx.cli import main
from hybridctx.errors import ConfigError
from hybridctx.eval import methods
from hybridctx.eval.cli_qa import DEFAULT_METHODS_ARG
from hybridctx.eval.methods import MethodOptions, build_methods, canonical_name, register_method

pytestmark = pytest.mark.slow

BUDGETS = (16, 64, 1024)


class Nothing:
    """A method that packs nothing: it must score 0 and send 0 tokens."""

    name = "nothing"

    def prepare(self, docs: Mapping[str, str]) -> None:
        pass

    def retrieve(self, query: str, doc_ids: Sequence[str] | None, budget: int) -> list:
        return []


@pytest.fixture(scope="module", autouse=True)
def _nothing_method() -> None:
    register_method("nothing", lambda options: Nothing(), replace=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_tiny_corpus(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> dict:
    """One eval over both sets with hybridctx, two peers (one by alias) and the empty method."""
    out = tmp_path_factory.mktemp("qa")
    code = main(["eval", "qa", "--data", str(data), "--datasets", "tiny,hotpotqa",
                 "--methods", "hybridctx,truncation,bm25-256,nothing", "--budgets", ",".join(map(str, BUDGETS)),
                 "--out", str(out), "--cache", str(out / "cache"), "--no-progress"])
    assert code == 0
    return {"out": out, "json": json.loads((out / "results.json").read_text(encoding="utf-8"))}


def _cell(payload: dict, method: str, dataset: str, budget: int) -> dict:
    (cell,) = [c for c in payload["cells"] if (c["method"], c["dataset"], c["budget"]) == (method, dataset, budget)]
    return cell


def test_writes_json_markdown_and_plot(run) -> None:
    out = run["out"]
    assert (out / "recall_vs_budget.png").stat().st_size > 1000
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "| truncation |" in table and "tiny@16" in table and "p50 ms@64" in table
    payload = run["json"]
    assert payload["methods"] == ["hybridctx", "truncation", "bm25-chunks-256", "nothing"]  # alias resolved
    assert payload["datasets"] == ["tiny", "hotpotqa"] and payload["budgets"] == list(BUDGETS)
    # one row per method, question and budget: 4 methods x (2 + 1 questions) x 3 budgets
    assert len(payload["rows"]) == 4 * 3 * 3


def test_truncation_matches_a_hand_computation(run) -> None:
    payload = run["json"]
    # tiny: q-first's evidence is the first sentence (15 tokens), q-deep's ends ~334 tokens in
    for budget, expected in zip(BUDGETS, (0.5, 0.5, 1.0)):
        cell = _cell(payload, "truncation", "tiny", budget)
        assert cell["score"] == cell["evidence_recall"] == expected
        assert cell["answer_hit"] == 1.0  # only q-first has an answer position, and it is in the first sentence
        assert cell["paragraph_recall"] is None
    # hotpotqa: paragraphs of 63-75 tokens; gold p0 and p3. 16 tokens hold <50% of p0; 64 hold p0 only.
    for budget, expected in zip(BUDGETS, (0.0, 0.5, 1.0)):
        cell = _cell(payload, "truncation", "hotpotqa", budget)
        assert cell["score"] == cell["paragraph_recall"] == expected
        assert cell["evidence_recall"] is None and cell["answer_hit"] is None
    rows = {(r["id"], r["budget"]): r for r in payload["rows"] if r["method"] == "truncation"}
    assert rows[("q-first", 16)]["score"] == 1.0 and rows[("q-deep", 64)]["score"] == 0.0


def test_a_method_that_sends_nothing_scores_zero(run) -> None:
    for dataset in ("tiny", "hotpotqa"):
        for budget in BUDGETS:
            cell = _cell(run["json"], "nothing", dataset, budget)
            assert cell["score"] == 0.0 and cell["tokens"] == 0.0


def test_budgets_are_respected_and_timed(run) -> None:
    for row in run["json"]["rows"]:
        assert 0 <= row["tokens"] <= row["budget"]
        assert row["latency_ms"] >= 0
    for cell in run["json"]["cells"]:
        assert cell["latency_p50_ms"] >= 0
    # retrieval finds the deep evidence of the tiny corpus once the budget allows
    assert _cell(run["json"], "hybridctx", "tiny", 1024)["score"] == 1.0
    assert _cell(run["json"], "bm25-chunks-256", "tiny", 1024)["score"] == 1.0


def test_one_dataset_folder_of_ones_own(data, tmp_path, capsys) -> None:
    out = tmp_path / "own"
    assert main(["eval", "qa", "--data", str(data / "tiny"), "--methods", "truncation", "--budgets", "16",
                 "--out", str(out), "--no-progress", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["datasets"] == ["tiny"] and printed["cells"][0]["score"] == 0.5
    assert (out / "results.json").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--methods", "hybridctx,truncaton"], "did you mean 'truncation'"),
        (["--methods", "llamaindex-265"], "did you mean"),
        (["--datasets", "tinny"], "did you mean 'tiny'"),
        (["--budgets", "512,lots"], "not a whole number"),
        (["--budgets", "0"], "positive"),
        (["--limit", "-3"], "--limit"),
    ],
)
def test_bad_input_exits_2_with_one_line(data, tmp_path, capsys, argv, message) -> None:
    assert main(["eval", "qa", "--data", str(data), "--out", str(tmp_path), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_data_dir_exits_2(tmp_path, capsys) -> None:
    assert main(["eval", "qa", "--data", str(tmp_path / "nowhere"), "--methods", "truncation", "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_method_registry_names_and_aliases(monkeypatch) -> None:
    assert canonical_name("sentence-window") == "llamaindex-window-3"
    assert canonical_name("bm25-256") == "bm25-chunks-256"
    with pytest.raises(ConfigError, match="already registered"):
        register_method("truncation", lambda options: Nothing())
    with pytest.raises(ConfigError, match="same method twice"):
        build_methods(["bm25-256", "bm25-chunks-256"], MethodOptions())
    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))  # keep the registration to this test
    register_method("misnamed", lambda options: Nothing())
    with pytest.raises(ConfigError, match="named 'nothing'"):
        build_methods(["misnamed"])
    assert tuple(DEFAULT_METHODS_ARG.split(",")) == methods.DEFAULT_METHODS


def test_parsers_stay_light() -> None:
    """Building the CLI parser must not load the evaluation's heavy libraries."""
    code = ("import sys, hybridctx.eval.cli_qa, hybridctx.eval.cli_route; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'bm25s', 'faiss', 'llama_index') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
