"""The streaming BM25 builder against bm25s's in-memory one: same matrix, same scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridctx.errors import InputError
from hybridctx.indexers.lexical import bm25_build
from hybridctx.indexers.lexical.bm25_build import build_bm25
from hybridctx.indexers.lexical.bm25 import LexicalIndex
from hybridctx.indexers.lexical.terms import TokenizerSettings, lexical_tokens
from hybridctx.ingest.segmentation import split_sentences

SAMPLES = Path(__file__).resolve().parents[2] / "hybridctx" / "samples"


def sentences_of(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.fixture(scope="module")
def alice() -> list[str]:
    return sentences_of((SAMPLES / "alice_in_wonderland.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def xiyouji() -> list[str]:
    chapters = sorted((SAMPLES.parent / "eval" / "haystacks" / "xiyouji").glob("*.txt"))
    return [s for p in chapters for s in sentences_of(p.read_text(encoding="utf-8"))]


def bm25s_reference(texts: list[str], settings: TokenizerSettings = TokenizerSettings()) -> dict:
    """The previous in-memory build: token-id lists for every sentence, scored by bm25s."""
    import bm25s

    vocab: dict[str, int] = {}
    corpus_ids = [[vocab.setdefault(t, len(vocab)) for t in lexical_tokens(text, settings)] for text in texts]
    vocab.setdefault("", len(vocab))
    if not any(corpus_ids):
        return {"data": np.empty(0, np.float32), "indices": np.empty(0, np.int32),
                "indptr": np.zeros(len(vocab) + 1, np.int64), "vocab": vocab}
    model = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    model.index((corpus_ids, vocab), show_progress=False, create_empty_token=False)
    return {**{k: model.scores[k] for k in ("data", "indices", "indptr")}, "vocab": vocab}


def assert_same_matrix(texts: list[str], index: LexicalIndex, queries: list[str] = ()) -> None:
    ref = bm25s_reference(texts, index.settings)
    assert index._vocab == ref["vocab"]
    np.testing.assert_array_equal(index._indptr, ref["indptr"])
    np.testing.assert_array_equal(index._indices, ref["indices"])
    np.testing.assert_allclose(index._data, ref["data"], rtol=1e-5, atol=1e-6)
    assert index._data.dtype == np.float32 and index._indices.dtype == np.int32 and index._indptr.dtype == np.int64
    for q in queries:
        dense = np.zeros((len(texts),), np.float32)
        for t in lexical_tokens(q, index.settings):
            col = ref["vocab"].get(t)
            if col is not None and t:
                lo, hi = ref["indptr"][col], ref["indptr"][col + 1]
                dense[ref["indices"][lo:hi]] += ref["data"][lo:hi]
        np.testing.assert_allclose(index.scores(q), dense, rtol=1e-5, atol=1e-6)


def test_english_novel_matches_bm25s(alice) -> None:
    index = LexicalIndex.build(alice)
    assert len(index) == len(alice) > 1000
    assert_same_matrix(alice, index, ["Who was late, looking at a watch?", "the Queen of Hearts tarts", "zzz"])


@pytest.mark.slow  # jieba over four chapters: the full tier only
def test_chinese_novel_matches_bm25s(xiyouji) -> None:
    for settings in (TokenizerSettings(), TokenizerSettings(cjk_bigrams=False, search_mode=True)):
        index = LexicalIndex.build(xiyouji, settings=settings)
        assert_same_matrix(xiyouji, index, ["美猴王拜师学艺", "孙悟空大闹天宫", "花果山水帘洞"])


def test_edge_corpora_match_bm25s() -> None:
    cases = [
        [],
        ["One sentence only."],
        ["", "The cat sat.", "", "   ", "猫坐着。", ""],  # empty sentences in between
        ["", "the of and", "，。！", "..."],  # no terms at all
        ["same same same", "same"],
    ]
    for texts in cases:
        index = LexicalIndex.build(texts)
        assert len(index) == len(texts)
        assert_same_matrix(texts, index, ["cat", "same", "猫"])


def test_many_folds_and_slabs_give_the_same_matrix(alice, xiyouji, tmp_path, monkeypatch) -> None:
    texts = alice[:1500] + xiyouji[:500] + [""]
    rows = np.arange(0, 3 * len(texts), 3, dtype=np.int64)
    monkeypatch.setattr(bm25_build, "FOLD_TERMS", 97)  # fold mid-stream, again and again
    out = tmp_path / "small"
    out.mkdir()
    built = build_bm25(zip(rows.tolist(), texts), out, slab_postings=500)
    ref = bm25s_reference(texts)
    assert built.vocab == ref["vocab"] and built.num_docs == len(texts) and built.postings == len(ref["data"])
    for key in ("indptr", "indices"):
        np.testing.assert_array_equal(np.load(out / f"lexical.{key}.npy"), ref[key])
    np.testing.assert_allclose(np.load(out / "lexical.data.npy"), ref["data"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(out / "lexical.rows.npy"), rows)
    assert sorted(p.name for p in out.iterdir()) == [f"lexical.{k}.npy" for k in ("data", "indices", "indptr", "rows")]


def test_rows_must_ascend_and_progress_counts_every_sentence(alice) -> None:
    seen: list[int] = []
    index = LexicalIndex.from_sentences(enumerate(alice[:5000]), progress=seen.append)
    assert sum(seen) == len(index) == min(5000, len(alice))
    with pytest.raises(InputError, match="ascending"):
        LexicalIndex.from_sentences([(3, "a b"), (3, "c d")])
    with pytest.raises(InputError, match="one per text"):
        LexicalIndex.build(["a b", "c d"], np.array([1, 2, 3]))
    with pytest.raises(InputError, match="one per text"):
        LexicalIndex.build(["a b", "c d", "e"], np.array([1, 2]))


def test_loaded_index_is_mapped_and_saves_never_write_through(alice, tmp_path) -> None:
    first = LexicalIndex.build(alice[:300])
    first.save(tmp_path / "idx")
    before = first.scores("rabbit watch")
    other = LexicalIndex.build(alice[300:700])
    other.save(tmp_path / "idx")  # over the first one's (hard-linked) files
    np.testing.assert_array_equal(first.scores("rabbit watch"), before)
    loaded = LexicalIndex.load(tmp_path / "idx")
    assert isinstance(loaded._data.base, np.memmap) or isinstance(loaded._data, np.memmap) or \
        loaded._data.base is not None  # a view of the mapped file
    np.testing.assert_array_equal(loaded.scores("rabbit watch"), other.scores("rabbit watch"))
    params = json.loads((tmp_path / "idx" / "lexical.params.json").read_text(encoding="utf-8"))
    assert params["method"] == "lucene" and params["num_docs"] == 400
    loaded.save(tmp_path / "copy")  # from the mapped arrays
    np.testing.assert_array_equal(LexicalIndex.load(tmp_path / "copy").scores("queen"), other.scores("queen"))


def test_shared_corpora_match_bm25s(shared_data) -> None:
    texts: list[str] = []
    for name in ("cmrc2018", "pg_essays"):
        path = shared_data / name / "docs.jsonl"
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as fh:
            for line, _ in zip(fh, range(40)):
                texts.extend(sentences_of(json.loads(line)["text"]))
    if not texts:
        pytest.skip("no docs.jsonl in ../shared/data/cmrc2018 or pg_essays")
    assert_same_matrix(texts, LexicalIndex.build(texts), ["战国无双", "the best essays are"])
