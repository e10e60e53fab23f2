"""The public command line contract of DESIGN.md, run in-process on a real index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hybridctx.cli import main
from hybridctx.packing.tokens import get_counter

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[1] / "hybridctx" / "samples"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Alice (a long file) plus a JSONL of two small documents, one Chinese."""
    root = tmp_path_factory.mktemp("corpus")
    shutil.copy(SAMPLES / "alice_in_wonderland.txt", root / "alice.txt")
    lines = [
        {"doc_id": "notes",
         "text": "The meeting moved to Tuesday.\nBudget approved: 4.2 million dollars.\n\nNext review in May."},
        {"doc_id": "zh", "text": "贾宝玉住在怡红院。林黛玉住在潇湘馆。薛宝钗住在蘅芜苑。", "title": "红楼梦"},
    ]
    (root / "more.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def index_dir(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "index"
    assert main(["index", str(corpus / "alice.txt"), str(corpus / "more.jsonl"), "--index", str(out), "--no-progress"]) == 0
    return out


def _json_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_retrieve_json_offsets_map_back_and_fit_the_budget(index_dir, corpus, capsys) -> None:
    alice = (corpus / "alice.txt").read_text(encoding="utf-8")
    for budget, tokenizer in [(1000, "cl100k_base"), (300, "o200k_base")]:
        assert main(["retrieve", "--index", str(index_dir), "--budget", str(budget), "--tokenizer", tokenizer,
                     "--json", "What was written on the little bottle?"]) == 0
        (result,) = _json_lines(capsys)
        assert result["budget"] == budget and result["tokenizer"] == tokenizer
        assert result["tokens"] == get_counter(tokenizer).count(result["context"]) <= budget
        assert result["spans"]
        for span in result["spans"]:
            assert span["doc_id"] == "alice.txt"
            assert alice[span["start"]:span["end"]] == span["text"]
            assert span["text"] in result["context"]
        assert any("DRINK ME" in s["text"] for s in result["spans"])
        assert set(result["timings_ms"]) >= {"pack", "total"}


def test_doc_id_restricts_and_chinese_is_found_lexically(index_dir, capsys) -> None:
    assert main(["retrieve", "--index", str(index_dir), "--budget", "200", "--doc-id", "zh", "--json", "林黛玉住在哪里？"]) == 0
    (result,) = _json_lines(capsys)
    assert {s["doc_id"] for s in result["spans"]} == {"zh"}
    assert "潇湘馆" in result["context"]


def test_batch_queries_keep_order_and_ids(index_dir, tmp_path, capsys) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"id": "a", "query": "When is the next review?", "doc_ids": ["notes"]}) + "\n"
        + json.dumps({"id": "b", "query": "Who is the Queen of Hearts?"}) + "\n", encoding="utf-8")
    assert main(["retrieve", "--index", str(index_dir), "--budget", "500", "--queries", str(queries), "--json"]) == 0
    results = _json_lines(capsys)
    assert [r["id"] for r in results] == ["a", "b"]
    assert "May" in results[0]["context"] and all(s["doc_id"] == "notes" for s in results[0]["spans"])


def test_info_reports_counts_and_encoder(index_dir, capsys) -> None:
    assert main(["info", "--index", str(index_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"]["documents"] == 3
    assert info["encoder"]["name"] == "all-MiniLM-L6-v2" and info["encoder"]["dim"] == 384
    assert info["vectors"]["kind"] == "auto"  # exact Flat until 20k vectors


def test_reindexing_skips_unchanged_and_replaces_changed(index_dir, corpus, tmp_path, capsys) -> None:
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    changed = tmp_path / "more.jsonl"
    changed.write_text(json.dumps({"doc_id": "notes", "text": "The meeting moved to Friday."}) + "\n", encoding="utf-8")
    assert main(["index", str(corpus / "alice.txt"), str(changed), "--index", str(copy), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unchanged"] == ["alice.txt"] and report["replaced"] == ["notes"] and report["added"] == []
    assert report["counts"]["documents"] == 3
    assert main(["delete", "notes", "--index", str(copy)]) == 0
    capsys.readouterr()
    assert main(["info", "--index", str(copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["documents"] == 2


def test_bad_input_is_one_line_exit_2_and_leaves_the_index(index_dir, tmp_path, capsys) -> None:
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    before = (copy / "manifest.json").read_bytes()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "x", "text": "fine"}\n{"doc_id": "y"}\n', encoding="utf-8")
    assert main(["index", str(bad), "--index", str(copy), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.jsonl:2" in err and "text" in err
    assert (copy / "manifest.json").read_bytes() == before
    assert main(["retrieve", "--index", str(tmp_path / "missing"), "--budget", "100", "q"]) == 2
    assert "no index at" in capsys.readouterr().err
    assert main(["retrieve", "--index", str(copy), "--budget", "0", "q"]) == 2
    assert "budget" in capsys.readouterr().err


def test_skip_bad_indexes_the_good_lines(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "x", "text": "A fine line of text."}\n{"doc_id": "y"}\n', encoding="utf-8")
    assert main(["index", str(bad), "--index", str(tmp_path / "i"), "--skip-bad", "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == ["x"] and report["skipped"] == [f"{bad}:2"]


def test_corrupted_index_gives_the_clear_error(index_dir, tmp_path, capsys) -> None:
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    data = bytearray((copy / "vectors.faiss").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "vectors.faiss").write_bytes(bytes(data))
    assert main(["retrieve", "--index", str(copy), "--budget", "100", "rabbit"]) == 2
    err = capsys.readouterr().err
    assert "vectors.faiss" in err and len(err.strip().splitlines()) == 1


def test_route_json_follows_the_contract(index_dir, capsys) -> None:
    assert main(["route", "--index", str(index_dir), "--profile", "kimi", "--json", "Summarise the whole book"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["mode"] == "full" and "summarise" in decision["reason"]
    for mode in ("full", "retrieval"):
        assert {"tokens", "usd", "latency_s", "kv_gib"} <= set(decision["estimates"][mode])
    assert decision["estimates"]["full"]["tokens"] > decision["estimates"]["retrieval"]["tokens"]
    # The small CPU model cannot take the whole book: retrieval, with the window named in the reason.
    assert main(["route", "--index", str(index_dir), "--profile", "smollm2-135m-cpu", "--json", "Who is the Hatter?"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["mode"] == "retrieval" and "8,192" in decision["reason"]
    assert main(["route", "--index", str(index_dir), "--profile", "kimmi", "q"]) == 2
    assert "did you mean 'kimi'" in capsys.readouterr().err


def test_bundled_questions_find_their_evidence(index_dir) -> None:
    """Retrieval quality on the shipped book with the real encoder (measured: hybrid 8/8 at 1000 tokens)."""
    from hybridctx import HybridContext

    hc = HybridContext.open(index_dir)
    questions = [json.loads(line) for line in (SAMPLES / "alice_questions.jsonl").read_text(encoding="utf-8").splitlines()]
    found = {
        mode: sum(any(q["evidence"] in s.text for s in hc.retrieve(q["query"], budget=1000, mode=mode,
                                                                   doc_ids=["alice.txt"]).spans)
                  for q in questions)
        for mode in ("hybrid", "dense", "lexical")
    }
    assert found["hybrid"] >= 7 and found["dense"] >= 7
    assert found["hybrid"] >= found["lexical"]
