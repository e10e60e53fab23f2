"""Needle in a haystack: placement, scoring rules, the cached encoder, the CLI, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hybridctx.cli import main
from hybridctx.eval.cli_niah import parse_depths, parse_sizes
from hybridctx.eval.haystack import load_haystack
from hybridctx.eval.needles import make_needles
from hybridctx.eval.niah import NIAHConfig, make_methods, run_niah
from hybridctx.eval.peers import Truncation
from hybridctx.llms.protocol import Completion
from hybridctx.ingest.segmentation import split_sentences
from hybridctx.packing.tokens import get_counter

pytestmark = pytest.mark.slow

MULTI = re.compile(r"[A-Z][\w ]*? is one of the secret ingredients needed to build the perfect \w+\.")
MAGIC = re.compile(r"The special magic number for the ([\w-]+) is \d+\.")


@pytest.fixture(scope="module")
def haystack_dir(tmp_path_factory, alice_text) -> Path:
    """About 6 KB of Alice (chapter II), in two files."""
    path = tmp_path_factory.mktemp("haystack")
    part = alice_text[alice_text.index("CHAPTER II."):][:6000]
    (path / "b.txt").write_text(part[3000:], encoding="utf-8")
    (path / "a.txt").write_text(part[:3000], encoding="utf-8")
    (path / "notes.bin").write_bytes(b"\x00\x01 ignored")
    return path


@pytest.fixture(scope="module")
def hybrid(encoder):
    return make_methods(["hybridctx"], encoder=encoder)[0]


class Pattern:
    """Packs the sentences a regex finds (an oracle), optionally only some of them."""

    def __init__(self, name: str, pattern: re.Pattern, keep=lambda match, question: True, first_only=False) -> None:
        self.name, self.pattern, self.keep, self.first_only = name, pattern, keep, first_only
        self.docs: dict[str, str] = {}

    def prepare(self, docs):
        self.docs = dict(docs)

    def retrieve(self, query, doc_ids, budget):
        doc_id = doc_ids[0]
        matches = [m for m in self.pattern.finditer(self.docs[doc_id]) if self.keep(m, query)]
        matches = matches[:1] if self.first_only else matches
        return [(doc_id, m.start(), m.end()) for m in matches]


class Empty:
    name = "empty"

    def prepare(self, docs):
        pass

    def retrieve(self, query, doc_ids, budget):
        return []


def test_sizes_and_depths_parse() -> None:
    assert parse_sizes("8k,32k,128k,1M,1.5k,500", "--lengths") == [8000, 32000, 128000, 1_000_000, 1500, 500]
    assert parse_depths("0,10,...,100") == [float(d) for d in range(0, 101, 10)]
    assert parse_depths("0, 25%,100") == [0.0, 25.0, 100.0]


def test_needles_are_whole_sentences_at_their_depth(haystack_dir) -> None:
    import random

    for source, unit, length in ((haystack_dir, "tokens", 3000), ("xiyouji", "chars", 5000)):
        hay = load_haystack(source)
        ctx = hay.cut(length, unit, get_counter())
        assert ctx.size <= length
        assert ctx.size == (get_counter().count(ctx.text) if unit == "tokens" else len(ctx.text))
        needles = make_needles("multikey", hay.language, random.Random(3)).needles
        starts = []
        for depth in (0, 30, 60, 100):
            doc, placed = ctx.insert([(depth, needles[0]), (45.0, needles[1])])
            sentences = set(split_sentences(doc))
            for p in placed:
                assert doc[p.start:p.end] == p.needle.text and (p.start, p.end) in sentences
            rest = doc
            for p in sorted(placed, key=lambda p: -p.start):
                rest = rest[:p.start] + rest[p.end:]
            assert len(rest) - len(ctx.text) <= 2 * 8  # only the copied boundary whitespace was added
            starts.append(placed[0].start / len(doc))
        assert starts[0] == 0.0 and placed[0].end == len(doc) and starts == sorted(starts)


def test_cached_encoder_gives_the_plain_vectors_and_reuses_windows(encoder) -> None:
    import random

    from hybridctx.datatypes import Document
    from hybridctx.eval.window_cache import CachedWindowEncoder
    from hybridctx.ingest.landmarks import landmarks_for

    hay = load_haystack("alice")
    ctx = hay.cut(3000, "tokens", get_counter())
    needle = make_needles("single", "en", random.Random(0)).needles[0]
    cached = CachedWindowEncoder(encoder)
    for depth in (0, 80):
        doc, _ = ctx.insert([(depth, needle)])
        offsets, _ = encoder.token_offsets(doc)
        sentences = landmarks_for(Document("d", doc), offsets, 128).sentences
        before = cached.windows_encoded
        got = cached.encode_documents([(doc, sentences)])[0]
        want = encoder.encode_documents([(doc, sentences)])[0]
        assert got.shape == want.shape and np.allclose(got, want, atol=1e-5)
    assert cached.windows_encoded - before < cached.windows_seen / 2  # the second depth reused windows


def test_planted_needle_found_at_every_depth(haystack_dir, hybrid) -> None:
    config = NIAHConfig(lengths=(1500,), depths=(0, 25, 50, 75, 100), budget=400)
    results = run_niah(load_haystack(haystack_dir), config, [hybrid, Truncation()], show_progress=False)
    assert [t.outcome("hybridctx").passed for t in results.trials] == [True] * 5
    truncation = [t.outcome("truncation").passed for t in results.trials]
    assert truncation[0] and not truncation[-1]  # sanity: only the start is in the first 400 tokens
    assert all(o.tokens <= 400 for t in results.trials for o in t.outcomes)


def test_method_that_packs_nothing_scores_zero(haystack_dir) -> None:
    config = NIAHConfig(lengths=(1000,), depths=(0, 50, 100), variant="multi")
    results = run_niah(load_haystack(haystack_dir), config, [Empty()], show_progress=False)
    assert results.summary("empty").pass_rate == 0.0
    assert all(o.found == 0 and o.tokens == 0 for t in results.trials for o in t.outcomes)


def test_multi_needle_requires_every_needle(haystack_dir) -> None:
    first_only = Pattern("first", MULTI, first_only=True)
    every = Pattern("every", MULTI)
    config = NIAHConfig(lengths=(1500,), depths=(10, 60), variant="multi", needles=3)
    results = run_niah(load_haystack(haystack_dir), config, [first_only, every], show_progress=False)
    for trial in results.trials:
        assert len(trial.needles) == 3
        assert trial.outcome("every").passed and trial.outcome("every").found == 3
        first = trial.outcome("first")
        assert not first.passed and first.found == 1 and first.needles == 3
    assert results.summary("first").pass_rate == 0.0


def test_multikey_passes_on_the_right_key_and_records_distractors(haystack_dir, hybrid) -> None:
    def asked(m, question):
        return f"for the {m.group(1)}?" in question

    everything = Pattern("everything", MAGIC)
    right = Pattern("right", MAGIC, keep=asked)
    wrong = Pattern("wrong", MAGIC, keep=lambda m, q: not asked(m, q))
    config = NIAHConfig(lengths=(1500,), depths=(0, 50), variant="multikey", distractors=3, budget=500)
    results = run_niah(load_haystack(haystack_dir), config, [everything, right, wrong, hybrid], show_progress=False)
    for trial in results.trials:
        assert [p.needle.role for p in trial.needles] == ["needle", "distractor", "distractor", "distractor"]
        assert (trial.outcome("everything").passed, trial.outcome("everything").distractors_packed) == (True, 3)
        assert (trial.outcome("right").passed, trial.outcome("right").distractors_packed) == (True, 0)
        assert (trial.outcome("wrong").passed, trial.outcome("wrong").distractors_packed) == (False, 3)
        assert trial.outcome("hybridctx").distractors == 3
    grid = results.to_json()["grid"]
    assert {c["distractors_packed_rate"] for c in grid if c["method"] == "everything"} == {1.0}


def test_same_seed_same_trials(haystack_dir) -> None:
    def run(seed):
        config = NIAHConfig(lengths=(1000, 2000), depths=(0, 50, 100), variant="multikey", seed=seed)
        data = run_niah(load_haystack(haystack_dir), config, [Truncation()], show_progress=False).to_json()
        return [(t["needles"], t["results"]["truncation"]["passed"], t["question"]) for t in data["trials"]]

    assert run(7) == run(7)
    assert [n for n, _, _ in run(7)] != [n for n, _, _ in run(8)]


def test_llm_answers_are_scored_by_the_needle_value(haystack_dir) -> None:
    class Reader:
        """Answers with the number its context gives for the asked key (a stand-in model)."""

        name, window = "reader", 8192

        def generate(self, messages, *, max_tokens=512, temperature=0.0, stream=False, on_token=None):
            prompt = messages[-1]["content"]
            key = re.search(r"magic number for the ([\w-]+)\?", prompt).group(1)
            found = re.search(rf"for the {re.escape(key)} is (\d+)", prompt)
            return Completion(f"It is {int(found.group(1)):,}." if found else "I cannot answer.", 10, 5, 0.01, "reader")

    config = NIAHConfig(lengths=(1000,), depths=(0, 100), variant="multikey", budget=200)
    results = run_niah(load_haystack(haystack_dir), config, [Truncation(), Empty()], llm=Reader(), show_progress=False)
    assert [t.outcome("truncation").llm_passed for t in results.trials] == [True, False]
    assert [t.outcome("empty").llm_passed for t in results.trials] == [False, False]
    assert results.to_json()["summary"]["truncation"]["llm_pass_rate"] == 0.5


def test_cli_writes_json_and_heatmap_and_prints_the_same_table(haystack_dir, tmp_path, capsys) -> None:
    out = tmp_path / "niah"
    code = main(["eval", "niah", "--haystack", str(haystack_dir), "--lengths", "1k,1.5k", "--depths", "0,50,100",
                 "--methods", "hybridctx,truncation", "--budget", "256", "--device", "cpu", "--out", str(out),
                 "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data["trials"]) == 6 and data["methods"] == ["hybridctx", "truncation"]
    for method in data["methods"]:
        row = re.search(rf"^\| {method} \| ([\d.]+) \| (\d+) \|", printed, re.M)
        assert float(row.group(1)) == round(data["summary"][method]["pass_rate"], 3)
        assert int(row.group(2)) == data["summary"][method]["trials"] == 6
        block = printed.split(f"{method}: pass rate by depth")[1].split("\n\n")[1]
        rows = [line.strip("|").split("|") for line in block.splitlines()[2:]]
        cells = {(c["length"], c["depth"]): c["pass_rate"] for c in data["grid"] if c["method"] == method}
        assert len(rows) == 3
        for line in rows:
            depth = float(line[0].strip().rstrip("%"))
            for length, value in zip((1000, 1500), line[1:]):
                assert float(value) == round(cells[(length, depth)], 2)


@pytest.mark.parametrize("args, needle", [
    (["--lengths", "abc"], "'abc' is not a length"),
    (["--depths", "0,50,101"], "101 is not a percentage"),
    (["--methods", "hybrid"], "did you mean 'hybridctx'"),
    (["--haystack", "EMPTY"], "has no .txt or .md files"),
    (["--haystack", "MISSING"], "does not exist"),
    (["--haystack", "BLANK"], "has only empty files"),
    (["--lengths", "1"], "cannot hold the first sentence"),
])
def test_bad_input_exits_2_with_one_line(args, needle, tmp_path, capsys, haystack_dir) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("  \n", encoding="utf-8")
    paths = {"EMPTY": str(tmp_path / "empty" / "sub"), "MISSING": str(tmp_path / "missing"),
             "BLANK": str(tmp_path / "empty")}
    (tmp_path / "empty" / "sub").mkdir()
    args = [paths.get(a, a) for a in args]  # a later option overrides the defaults given first
    code = main(["eval", "niah", "--no-progress", "--haystack", str(haystack_dir), "--methods", "truncation", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err and err.startswith("hybridctx eval: error:")


def test_chinese_needle_is_found_in_the_shipped_novel(hybrid) -> None:
    config = NIAHConfig(lengths=(6000,), depths=(0, 50, 100), unit="chars", budget=300)
    results = run_niah(load_haystack("xiyouji"), config, [hybrid], show_progress=False)
    assert results.haystack["language"] == "zh"
    assert all("在" in t.question for t in results.trials)
    assert [t.outcome("hybridctx").passed for t in results.trials] == [True] * 3
