"""hybridctx train: the real packaged MiniLM fine-tuned for a few steps on parts of Alice.

The trainer must read documents exactly as indexing does (same vectors for the
same weights), learn (loss falls, recall on its corpus rises above the untrained
model's), write a model directory that indexes and retrieves through the CLI,
reproduce itself from a seed, resume, and refuse bad data with one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridctx.cli import main
from hybridctx.embeddings.training import TrainingError
from hybridctx.embeddings.training.data import Example, inverse_cloze, load_qa, split_documents, split_long
from hybridctx.embeddings.training.objective import position_weights
from hybridctx.embeddings.training.trainer import TrainConfig, Trainer, eval_set_for
from hybridctx.errors import InputError
from hybridctx.ingest.segmentation import split_sentences

pytestmark = pytest.mark.heavy

WINDOW = 64


@pytest.fixture(scope="module")
def corpus(alice_text: str) -> dict[str, str]:
    return split_long({"alice": alice_text[2000:14000]}, 3000)


@pytest.fixture(scope="module")
def pairs(corpus: dict[str, str]) -> list[Example]:
    return inverse_cloze(corpus, {d: split_sentences(t) for d, t in corpus.items()}, per_doc=6, seed=0)


def _config(**changes) -> TrainConfig:
    values = dict(window=WINDOW, epochs=2, steps_per_epoch=6, batch_queries=4, max_windows=6, lr=1e-4,
                  alpha=0.5, val_budgets=(96,), patience=5, device="cpu", seed=0)
    values.update(changes)
    return TrainConfig(**values)


def _dense_recall(model: str, corpus: dict[str, str], examples: list[Example]) -> float:
    from hybridctx.eval.hybrid_method import HybridCtxMethod
    from hybridctx.eval.runner import evaluate
    from hybridctx.retrieval.retriever import RetrievalConfig

    method = HybridCtxMethod("dense", encoder={"model": model, "window": WINDOW, "device": "cpu",
                                               "query_runtime": "torch"},
                             config=RetrievalConfig(mode="dense"), show_progress=False)
    results = evaluate({"c": eval_set_for("c", corpus, examples)}, [method], [96], show_progress=False)
    return results.cell("dense", "c", 96).score


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus, pairs):
    out = tmp_path_factory.mktemp("trained") / "model"
    train_ids, val_ids = split_documents(list(corpus), 0.25, 0)
    train_pairs = [p for p in pairs if p.doc_ids[0] in train_ids]
    val = {"val": eval_set_for("val", {d: corpus[d] for d in val_ids}, [p for p in pairs if p.doc_ids[0] in val_ids])}
    trainer = Trainer(_config(), corpus, train_pairs, val, out, card_info={"command": "test"}, show_progress=False)
    return trainer.train(), out, train_pairs


def test_position_weights_favour_the_end_of_the_run() -> None:
    w = position_weights(3, 1.0)
    assert abs(sum(w) - 1) < 1e-9 and w[0] < w[1] < w[2]
    assert position_weights(4, 0.0) == [0.25] * 4


def test_trainer_reads_documents_as_indexing_does(corpus) -> None:
    """Same weights, same vectors: the trainer's forward equals encode_documents / encode_queries."""
    import torch

    from hybridctx.datatypes import Document
    from hybridctx.embeddings import WindowedLandmarkEncoder
    from hybridctx.ingest.indexing import _max_landmark_tokens
    from hybridctx.ingest.landmarks import landmarks_for

    doc_id = sorted(corpus)[1]
    text = corpus[doc_id]
    ex = [Example("the Rabbit", ((doc_id, 0, 10),))]
    trainer = Trainer(_config(), corpus, ex, {}, "/nonexistent", show_progress=False)
    trainer._setup()
    doc = trainer._docs[doc_id]
    assert len(doc.windows) > 2  # several windows, so the plan matters
    with torch.no_grad():
        windows = [(doc_id, w) for w in range(len(doc.windows))]
        _, landmarks, _ = trainer._encode_batch(trainer._items, windows)
        query = torch.nn.functional.normalize(trainer.encode_queries_torch(["Who was late?"]), dim=-1)
    served = WindowedLandmarkEncoder(window=WINDOW, device="cpu", query_runtime="torch")
    offsets, _ = served.token_offsets(text)
    sentences = landmarks_for(Document(doc_id, text), offsets, _max_landmark_tokens(served)).sentences
    expected = served.encode_documents([(text, sentences)])[0]
    order = np.concatenate(doc.owners)  # the trainer's rows follow the windows' owned sentences
    np.testing.assert_allclose(landmarks.numpy(), expected[order], atol=2e-5)
    np.testing.assert_allclose(query.numpy(), served.encode_queries(["Who was late?"]), atol=2e-5)


def test_loss_falls_and_recall_beats_the_untrained_model(trained, corpus) -> None:
    result, out, train_pairs = trained
    losses = [h["loss"] for h in result.history[1:]]
    assert losses[-1] < losses[0]
    before = _dense_recall("all-MiniLM-L6-v2", corpus, train_pairs)
    after = _dense_recall(str(out), corpus, train_pairs)
    assert after > before, (before, after)
    card = json.loads((out / "hybridctx_training.json").read_text())
    assert card["base_model"] == "all-MiniLM-L6-v2" and card["window"] == WINDOW
    assert card["history"][0]["epoch"] == 0 and "dense" in card["history"][0]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert "## Validation" in (out / "README.md").read_text()


def test_trained_directory_indexes_and_retrieves(trained, tmp_path, capsys, corpus) -> None:
    _, out, _ = trained
    doc = tmp_path / "part.txt"
    doc.write_text(corpus[sorted(corpus)[0]], encoding="utf-8")
    index = tmp_path / "index"
    assert main(["index", str(doc), "--index", str(index), "--encoder", str(out), "--device", "cpu",
                 "--no-progress"]) == 0
    assert main(["info", "--index", str(index), "--json"]) == 0
    capsys.readouterr()
    manifest = json.loads((index / "manifest.json").read_text())
    assert str(out.resolve()) in json.dumps(manifest)
    assert main(["retrieve", "White Rabbit with pink eyes", "--index", str(index), "--budget", "120",
                 "--json"]) == 0
    packed = json.loads(capsys.readouterr().out)
    assert packed["tokens"] <= 120 and packed["spans"]


def test_a_fixed_seed_reproduces_and_resume_continues(tmp_path, corpus, pairs) -> None:
    import torch
    from safetensors.torch import load_file

    def run(out: Path, epochs: int, resume: bool = False):
        cfg = _config(epochs=epochs, steps_per_epoch=2)
        return Trainer(cfg, corpus, pairs, {}, out, show_progress=False).train(resume=resume)

    run(tmp_path / "a", 2)
    run(tmp_path / "b", 2)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    first = run(tmp_path / "c", 1)
    assert first.steps == 2
    resumed = run(tmp_path / "c", 2, resume=True)
    assert resumed.steps == 4 and [h["epoch"] for h in resumed.history] == [0, 1, 2]


def test_nan_loss_stops_with_a_message(corpus, pairs, tmp_path) -> None:
    trainer = Trainer(_config(temperature=1e-300), corpus, pairs, {}, tmp_path / "m", show_progress=False)
    with pytest.raises(TrainingError, match="loss became nan"):
        trainer.train()


def _qa_dir(root: Path, docs: dict[str, str], records: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "docs.jsonl").write_text("".join(json.dumps({"doc_id": d, "text": t}) + "\n" for d, t in docs.items()))
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


@pytest.mark.parametrize("record, message", [
    ({"id": "q1", "doc_id": "a", "question": "Why?", "evidence_offsets": [[5, 99999]]}, "outside document 'a'"),
    ({"id": "q2", "doc_id": "a", "question": "Why?"}, "has no evidence"),
])
def test_bad_qa_data_is_one_line_and_exit_2(tmp_path, capsys, corpus, record, message) -> None:
    docs = {"a": corpus[sorted(corpus)[0]], "b": corpus[sorted(corpus)[1]]}
    folder = _qa_dir(tmp_path / "qa", docs, [record])
    assert main(["train", "--qa", str(folder), "--out", str(tmp_path / "m"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    with pytest.raises(InputError):
        load_qa(folder)


def test_an_empty_split_is_one_line_and_exit_2(tmp_path, capsys, corpus) -> None:
    docs = {"a": corpus[sorted(corpus)[0]]}
    folder = _qa_dir(tmp_path / "qa", docs, [{"id": "q", "doc_id": "a", "question": "Who?",
                                                "evidence_offsets": [[0, 40]]}])
    assert main(["train", "--qa", str(folder), "--out", str(tmp_path / "m"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "split" in err and "empty" in err and len(err.splitlines()) == 1


def test_split_keeps_a_questions_documents_together() -> None:
    ids = [f"d{i}" for i in range(20)]
    groups = [("d0", "d1"), ("d2", "d3"), ("d4", "d5")]
    train, val = split_documents(ids, 0.3, 7, groups=groups)
    assert not set(train) & set(val) and set(train) | set(val) == set(ids)
    for g in groups:
        assert set(g) <= set(train) or set(g) <= set(val)
    assert split_documents(ids, 0.3, 7, groups=groups) == (train, val)


def test_llm_questions_come_from_a_real_http_endpoint_and_are_cached(llm_server, corpus, tmp_path) -> None:
    from hybridctx.embeddings.training.data import synthetic_questions
    from hybridctx.llms.openai_compat import OpenAICompatibleLLM

    llm = OpenAICompatibleLLM(llm_server.base_url, "test-model", api_key_env=None, timeout_s=5.0)

    def ask(prompt: str) -> str:
        return llm.generate([{"role": "user", "content": prompt}], max_tokens=64).text

    docs = {d: corpus[d] for d in sorted(corpus)[:2]}
    sents = {d: split_sentences(t) for d, t in docs.items()}
    cache = tmp_path / "llm_questions.jsonl"
    made = synthetic_questions(docs, sents, ask, "test-model", cache, per_doc=3, seed=0)
    asked = len(llm_server.requests)
    assert asked == 6 and len(made) == 6 and all(e.source == "llm" and e.query for e in made)
    body = llm_server.requests[0].body
    prompt = (json.loads(body) if isinstance(body, (str, bytes)) else body)["messages"][0]["content"]
    doc_id, start, end = made[0].evidence[0]
    assert docs[doc_id][start:end] in prompt
    again = synthetic_questions(docs, sents, ask, "test-model", cache, per_doc=3, seed=0)
    assert again == made and len(llm_server.requests) == asked  # read back from the cache


def test_interpolation_moves_each_weight_the_asked_share_towards_the_trained_model(trained, tmp_path, corpus) -> None:
    """WiSE-FT: 0 is the base, 1 the trained model, 0.5 the midpoint; the result serves."""
    from safetensors.numpy import load_file

    from hybridctx.embeddings.models import resolve_model
    from hybridctx.embeddings.training.merge import interpolate_with_base, weight_file

    _, out, train_pairs = trained
    tuned = load_file(str(weight_file(out)))
    base = load_file(str(weight_file(resolve_model("all-MiniLM-L6-v2").path)))
    key = next(k for k in tuned if k.endswith("encoder.layer.5.output.dense.weight"))
    base_key = next(k for k in base if k.endswith("encoder.layer.5.output.dense.weight"))
    assert np.abs(tuned[key] - base[base_key]).max() > 1e-6  # training moved it
    half = load_file(str(weight_file(interpolate_with_base(out, 0.5, tmp_path / "half"))))
    np.testing.assert_allclose(half[key], (tuned[key] + base[base_key]) / 2, atol=1e-6)
    zero = load_file(str(weight_file(interpolate_with_base(out, 0.0, tmp_path / "zero"))))
    np.testing.assert_allclose(zero[key], base[base_key], atol=1e-7)
    card = json.loads((tmp_path / "half" / "hybridctx_training.json").read_text())
    assert card["interpolation"]["weight"] == 0.5 and card["window"] == WINDOW
    assert not (tmp_path / "half" / "checkpoint").exists()
    assert _dense_recall(str(tmp_path / "zero"), corpus, train_pairs) == pytest.approx(
        _dense_recall("all-MiniLM-L6-v2", corpus, train_pairs))


def test_interpolation_refuses_a_bad_weight_and_a_foreign_directory(trained, tmp_path) -> None:
    from hybridctx.embeddings.training.merge import interpolate_with_base
    from hybridctx.errors import ConfigError

    _, out, _ = trained
    with pytest.raises(ConfigError, match="between 0"):
        interpolate_with_base(out, 1.5, tmp_path / "x")
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "mine.txt").write_text("do not delete")
    with pytest.raises(ConfigError, match="not a model directory"):
        interpolate_with_base(out, 0.5, keep)
    assert (keep / "mine.txt").read_text() == "do not delete"
    with pytest.raises(InputError, match="no model.safetensors"):
        interpolate_with_base(tmp_path, 0.5, tmp_path / "y")


def test_interpolation_from_the_command_line(trained, tmp_path, capsys) -> None:
    _, out, _ = trained
    assert main(["train", "--interpolate-from", str(out), "--interpolate", "0.7", "--out", str(tmp_path / "m"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["weight"] == 0.7
    assert json.loads((tmp_path / "m" / "hybridctx_training.json").read_text())["interpolation"]["weight"] == 0.7
    assert main(["train", "--interpolate-from", str(out), "--interpolate", "2", "--out", str(tmp_path / "n")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "between 0" in err[0] and not (tmp_path / "n").exists()
    assert main(["train", "--interpolate", "0.5", "--out", str(tmp_path / "n")]) == 2
    assert "--interpolate-from" in capsys.readouterr().err


def test_a_labelled_share_fixes_how_many_questions_each_batch_holds() -> None:
    """Thousands of inverse-cloze pairs must not drown a few labels: share 0.5 of 8 is 4 questions a step."""
    import random

    from hybridctx.embeddings.training.trainer import _BatchDraw, _Item

    items = [_Item(f"q{i}", [("d", i)], labelled=True) for i in range(5)]
    items += [_Item(f"p{i}", [("d", i)], labelled=False) for i in range(95)]
    draw = _BatchDraw(items, 8, 0.5, random.Random(0))
    batches = [draw.next() for _ in range(10)]
    assert all(len(b) == 8 and sum(i.labelled for i in b) == 4 for b in batches)
    seen = [i.query for b in batches[:5] for i in b if i.labelled]
    assert sorted(set(seen)) == [f"q{i}" for i in range(5)]  # every question comes round
    plain = _BatchDraw(items, 8, None, random.Random(0))
    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    assert [i.query for i in plain.next()] == [items[k].query for k in order[:8]]  # the old draw, unchanged
    with pytest.raises(Exception, match="between 0 and 1"):
        TrainConfig(labelled_share=1.5)


def test_a_weight_delta_rebuilds_the_trained_model_from_the_packaged_base(trained, tmp_path, corpus) -> None:
    """An exact delta gives the trained weights back; a low-rank one is a few MB and close; both serve."""
    from safetensors.numpy import load_file, save_file

    from hybridctx.embeddings.training.delta import apply_delta, write_delta
    from hybridctx.embeddings.training.merge import weight_file
    from hybridctx.errors import ConfigError

    _, out, train_pairs = trained
    tuned = load_file(str(weight_file(out)))
    exact = apply_delta(write_delta(out, tmp_path / "exact.safetensors", rank=None), tmp_path / "exact")
    rebuilt = load_file(str(weight_file(exact)))
    assert all(np.abs(rebuilt[k] - tuned[k]).max() < 1e-6 for k in tuned)
    assert json.loads((exact / "hybridctx_training.json").read_text())["window"] == WINDOW
    small = write_delta(out, tmp_path / "r8.safetensors", rank=8)
    assert small.stat().st_size < (tmp_path / "exact.safetensors").stat().st_size / 10
    low = load_file(str(weight_file(apply_delta(small, tmp_path / "r8"))))
    key = next(k for k in tuned if k.endswith("encoder.layer.5.output.dense.weight"))
    assert np.linalg.norm(low[key] - tuned[key]) < np.linalg.norm(tuned[key]) * 1e-2  # close to the trained weights
    assert _dense_recall(str(exact), corpus, train_pairs) == pytest.approx(_dense_recall(str(out), corpus, train_pairs))
    # A delta made over other weights, or a file that is not a delta, is one clear error.
    entries = load_file(str(small))
    save_file(entries, str(tmp_path / "forged.safetensors"),
              metadata={"format": "hybridctx-landmark-delta/1", "base_model": "all-MiniLM-L6-v2",
                        "base_digest": "0" * 64, "files": "{}"})
    with pytest.raises(InputError, match="other weights"):
        apply_delta(tmp_path / "forged.safetensors", tmp_path / "f")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a readable weight delta"):
        apply_delta(tmp_path / "junk.safetensors", tmp_path / "j")
    assert not (tmp_path / "f").exists() and not (tmp_path / "j").exists()
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "mine.txt").write_text("do not delete")
    with pytest.raises(ConfigError, match="not a model directory"):
        apply_delta(small, keep)
    assert (keep / "mine.txt").read_text() == "do not delete"
