"""Windows read with the header path of a heading they cannot see (issue 13, part 2b).

With ``header_prefix_tokens`` off nothing changes: the same vectors whether or
not the input carries headings, and the encoder identity an index records is
the one it always was. With it on, a window whose first landmark lies under a
heading that starts before the window reads the heading's path after
``[CLS]``; the landmark's vector still pools only its own tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridctx.datatypes import Document
from hybridctx.embeddings import WindowedLandmarkEncoder
from hybridctx.embeddings.protocol import HeadedDocument, document_headers
from hybridctx.embeddings.registry import encoder_from_manifest
from hybridctx.errors import ConfigError
from hybridctx.ingest.indexing import _encoder_input, _max_landmark_tokens, build_index
from hybridctx.ingest.landmarks import landmarks_for

pytestmark = pytest.mark.slow

# A heading, then far more text than one 256-token window: later windows cannot see the heading.
BODY = " ".join(f"Clause {i} says the licensee pays the fee within thirty days of each invoice." for i in range(40))
TEXT = "Master Services Agreement\n\n12. GOVERNING LAW\n\n" + BODY + "\n\n13. NOTICES\n\nNotices go to the address above."


@pytest.fixture(scope="module")
def plain() -> WindowedLandmarkEncoder:
    return WindowedLandmarkEncoder(device="cpu", document_runtime="torch")


@pytest.fixture(scope="module")
def headed_input(plain: WindowedLandmarkEncoder) -> HeadedDocument:
    item = landmarks_for(Document("msa", TEXT), plain.token_offsets(TEXT)[0], 112)
    found = _encoder_input(item, True)
    assert isinstance(found, HeadedDocument)
    return found


def _recording(encoder: WindowedLandmarkEncoder) -> list[list[int]]:
    """Record every sequence the encoder runs through its model."""
    seen: list[list[int]] = []
    forward = encoder._forward

    def spy(seqs, onnx=None):
        seen.extend(list(s) for s in seqs)
        return forward(seqs, onnx)

    encoder._forward = spy  # type: ignore[method-assign]
    return seen


def test_headings_travel_with_the_document(headed_input: HeadedDocument) -> None:
    text, sentences = headed_input  # still the (text, sentences) pair every encoder reads
    assert text == TEXT and len(sentences) > 40
    paths = dict(document_headers(headed_input))
    law = TEXT.index("12. GOVERNING LAW")
    assert paths[law][-1] == "12. GOVERNING LAW"
    assert document_headers((TEXT, sentences)) == ()


def test_off_changes_no_vector_and_no_identity(plain: WindowedLandmarkEncoder, headed_input: HeadedDocument) -> None:
    text, sentences = headed_input
    want = plain.encode_documents([(text, sentences)], show_progress=False)[0]
    got = plain.encode_documents([headed_input], show_progress=False)[0]
    assert want.tobytes() == got.tobytes()  # byte-identical: the headings are not read when off
    assert "header_prefix_tokens" not in plain.identity
    # Off, indexing hands the encoder the plain pair, as before.
    item = landmarks_for(Document("msa", TEXT), plain.token_offsets(TEXT)[0], 112)
    assert type(_encoder_input(item, False)) is tuple


def test_a_window_under_an_unseen_heading_reads_its_path(headed_input: HeadedDocument) -> None:
    enc = WindowedLandmarkEncoder(device="cpu", document_runtime="torch", header_prefix_tokens=16)
    seen = _recording(enc)
    vectors = enc.encode_documents([headed_input], show_progress=False)[0]
    prepared = enc._prepare(headed_input[0], headed_input[1], headed_input.headers)
    plan, ids, ranges, heads = prepared["plan"], prepared["ids"], prepared["ranges"], prepared["headers"]
    assert len(plan.windows) >= 3
    assert int(np.diff(plan.windows, axis=1).max()) <= enc.window - 2 - 16  # planned 16 tokens shorter
    law = TEXT.index("12. GOVERNING LAW")
    heading_token = int(np.searchsorted(enc.token_offsets(TEXT)[0][:, 1], law, side="right"))
    assert heading_token >= plan.windows[0][0]
    assert heads[0] == []  # the first window reads the heading itself
    decoded = enc._tokenizer.decode(heads[1])
    assert decoded.endswith("12. governing law ›"), decoded
    for w in range(1, len(plan.windows) - 1):  # every later window is under the heading it cannot see
        assert heads[w], w
    # The sequence the model read for window 1: [CLS] + header path + the window's tokens + [SEP].
    a, b = (int(x) for x in plan.windows[1])
    want_seq = enc._prefix + heads[1] + ids[a:b].tolist() + enc._suffix
    assert want_seq in seen
    assert len(want_seq) <= enc.window
    # Its landmarks pool only their own tokens: the mean over their positions, shifted past the path.
    k = int(np.flatnonzero(plan.assignment == 1)[0])
    hidden = enc._forward([want_seq])[0].numpy()
    start = len(enc._prefix) + len(heads[1]) + int(ranges[k, 0]) - a
    end = start + int(ranges[k, 1] - ranges[k, 0])
    own = hidden[start:end].mean(axis=0)
    own /= np.linalg.norm(own)
    np.testing.assert_allclose(vectors[k], own, atol=1e-5)
    assert enc.identity["header_prefix_tokens"] == 16


def test_landmark_pooling_reads_the_landmark_token_after_the_path(headed_input: HeadedDocument) -> None:
    enc = WindowedLandmarkEncoder(device="cpu", document_runtime="torch", header_prefix_tokens=16, pooling="landmark")
    enc._load()
    prepared = enc._prepare(headed_input[0], headed_input[1], headed_input.headers)
    plan, ids, ranges, heads = prepared["plan"], prepared["ids"], prepared["ranges"], prepared["headers"]
    for w in range(len(plan.windows)):
        a, b = (int(x) for x in plan.windows[w])
        seq = enc._prefix + heads[w] + ids[a:b].tolist() + enc._suffix
        for k in np.flatnonzero(plan.assignment == w):
            end = len(enc._prefix) + len(heads[w]) + int(ranges[k, 1]) - a
            assert seq[end - 1] == enc._landmark_id  # each landmark's own token, after the path
    assert any(heads[1:])


def test_path_keeps_the_innermost_label_within_the_limit(plain: WindowedLandmarkEncoder) -> None:
    plain._load()
    ids = plain._path_ids(("A very long document title that goes on and on", "12. Governing Law"), 8)
    assert len(ids) <= 8 and plain._tokenizer.decode(ids) == "12. governing law ›"
    long = plain._path_ids(("word " * 40,), 8)
    assert len(long) == 8
    with pytest.raises(ConfigError, match="header_prefix_tokens"):
        WindowedLandmarkEncoder(header_prefix_tokens=-1)


def test_index_records_the_setting_and_an_old_index_loads(tmp_path: Path, plain: WindowedLandmarkEncoder) -> None:
    from hybridctx.indexers import LandmarkStore

    (tmp_path / "msa.txt").write_text(TEXT, encoding="utf-8")
    on = WindowedLandmarkEncoder(device="cpu", document_runtime="torch", header_prefix_tokens=16)
    built = build_index([tmp_path / "msa.txt"], tmp_path / "on", encoder=on, show_progress=False)
    assert built.encoder["header_prefix_tokens"] == 16
    manifest = json.loads((tmp_path / "on" / "manifest.json").read_text(encoding="utf-8"))
    assert encoder_from_manifest(manifest["encoder"]).config.header_prefix_tokens == 16
    # The index holds the headed reading: what encode_documents gives the headed input, not the plain pair.
    store = LandmarkStore.load(tmp_path / "on", expected_encoder=on.identity)
    try:
        (doc_id,) = store.doc_ids()
        doc = store.document(doc_id)  # as the loader made it (its title, its metadata)
        stored = store.vectors_for_rows(store.rows_for_documents([doc_id]))
    finally:
        store.close()
    item = landmarks_for(doc, on.token_offsets(TEXT)[0], _max_landmark_tokens(on))
    headed = on.encode_documents([_encoder_input(item, True)], show_progress=False)[0]
    np.testing.assert_allclose(stored, headed, atol=1e-6)
    assert not np.allclose(stored, on.encode_documents([(TEXT, item.sentences)], show_progress=False)[0], atol=1e-3)

    # An index written before the setting existed: no such key in its identity or settings.
    build_index([tmp_path / "msa.txt"], tmp_path / "old", encoder=plain, show_progress=False)
    path = tmp_path / "old" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    assert "header_prefix_tokens" not in manifest["encoder"]
    manifest["encoder"].get("settings", {}).pop("header_prefix_tokens", None)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    (tmp_path / "old" / "manifest.sha256").unlink(missing_ok=True)  # old indexes have no digest either
    reopened = encoder_from_manifest(manifest["encoder"])
    assert reopened.config.header_prefix_tokens == 0 and dict(reopened.identity) == dict(plain.identity)
    store = LandmarkStore.load(tmp_path / "old", expected_encoder=plain.identity)
    try:
        assert store.counts()["documents"] == 1
    finally:
        store.close()
