"""The structure pass: headings, sessions, turns, speakers, dates and pages, with exact spans.

Every document here is written for the test, one per format people have; none is
a dataset's rendering.
"""

from __future__ import annotations

import random
import sqlite3

import pytest

from hybridctx.ingest.dates import find_dates, within
from hybridctx.ingest.documents import load_documents
from hybridctx.retrieval.spans import GrowthRule
from hybridctx.ingest.structure import DocumentStructure, extract_structure, structure_from_json
from tiers import examples

MARKDOWN = """# Field Guide to Garden Birds

Short intro paragraph about the guide and how to use it in the field.

## Finches

Goldfinches eat thistle seeds all winter long and rarely visit feeders.

### Plumage

Males are brighter than females in spring.

## Thrushes

Song thrushes break snails on a stone anvil.
"""

CONTRACT = """MASTER SERVICES AGREEMENT

This Master Services Agreement is entered into as of 4 March 2021 between Acme Ltd and Bolt GmbH.

ARTICLE I
DEFINITIONS

Section 1.1 Affiliate. Any entity that controls a party.

ARTICLE II
FEES

Section 2.1 Invoices. Invoices are due within thirty days.

12. GOVERNING LAW. This Agreement shall be governed by the laws of the State of New York without regard to its conflict of laws principles, and each party submits to the courts of New York County for any dispute arising out of it.

13.2 Notices
All notices shall be in writing and sent to the addresses above.
"""  # noqa: E501 - clause 12 is one long paragraph on purpose

NOVEL = """CHAPTER I
The Storm

The rain began before dawn and did not stop for three days, flooding the lower fields.

CHAPTER II
The Road North

They left at first light with nothing but a cart and two tired horses.
"""

ZH_NOVEL = """第一回　甄士隐梦幻识通灵
却说那女娲氏炼石补天之时，于大荒山无稽崖炼成高十二丈的顽石。

第二回　贾夫人仙逝扬州城
诗云：一局输赢料不真，香销茶尽尚逡巡。

第二章 新的开始
他们在城外住了下来。
"""

CHAT_ISO = """[2023-05-08 14:32] Dana: did you book the tickets?
[2023-05-08 14:33] Omar: yes, two seats for Friday
[2023-05-09 09:01] Dana: great, see you there
"""

WHATSAPP = """5/8/23, 2:32 PM - Dana: running late
5/8/23, 2:35 PM - Omar: no problem, I'll wait at the gate
5/9/23, 8:10 AM - Dana: morning!
"""

MEETING = """Weekly sync — 2024-03-04

Priya: The migration is finished on staging.
Tom: Did the load test pass?
Priya: It did, with 20% headroom.

Meeting notes, March 11, 2024

Tom: Production rollout is set for Thursday.
Priya: I will write the announcement.
"""

SRT = """1
00:00:01,000 --> 00:00:03,500
Welcome back to the show.

2
00:00:04,000 --> 00:00:06,000
MAYA: Today we talk about bees.
"""

VTT = """WEBVTT

00:00:01.000 --> 00:00:03.000
<v Sam>Is the microphone on?

00:00:03.500 --> 00:00:05.000
<v Lee>It is, go ahead.
"""

ZH_CHAT = """2023年5月8日
小明：你今天去图书馆了吗？
小红：去了，借了三本书。
小明：哪三本？
"""

ALLCAPS = """Quarterly report on the northern depot and its stock levels.

INVENTORY SUMMARY
Stock of bolts fell by a third over the quarter while nuts stayed level.

STAFFING CHANGES
Two new forklift drivers joined in February.
"""


def _labels(structure: DocumentStructure) -> list[tuple[int, str]]:
    return [(h.level, " ".join(h.label.split())) for h in structure.headings]


def _path_of(text: str, structure: DocumentStructure, needle: str) -> tuple[str, ...]:
    return structure.path_at(text.index(needle))


def test_markdown_headings_and_paths() -> None:
    s = extract_structure(MARKDOWN)
    assert s.title == "Field Guide to Garden Birds"
    assert _labels(s) == [(0, "Field Guide to Garden Birds"), (2, "Finches"), (3, "Plumage"), (2, "Thrushes")]
    assert _path_of(MARKDOWN, s, "Males are") == ("Field Guide to Garden Birds", "Finches", "Plumage")
    # A sibling section closes the subsection before it.
    assert _path_of(MARKDOWN, s, "Song thrushes") == ("Field Guide to Garden Birds", "Thrushes")


def test_setext_headings() -> None:
    text = ("Release Notes\n=============\n\nFixed the parser crash on empty input lines.\n\n"
            "Known Issues\n------------\n\nNone so far, which is a pleasant change from the last release.\n")
    s = extract_structure(text)
    assert _labels(s) == [(0, "Release Notes"), (2, "Known Issues")]


def test_contract_articles_sections_and_inline_clause_titles() -> None:
    s = extract_structure(CONTRACT)
    labels = _labels(s)
    assert labels[0] == (0, "MASTER SERVICES AGREEMENT")
    assert (1, "ARTICLE I") in labels and (1, "ARTICLE II") in labels
    assert (2, "Section 2.1 Invoices. Invoices are due within thirty days.") not in labels
    # The clause title only, not the clause: "12. GOVERNING LAW".
    assert any(label == "12. GOVERNING LAW" for _, label in labels)
    assert any(label == "13.2 Notices" for _, label in labels)
    path = _path_of(CONTRACT, s, "without regard")
    assert path[0] == "MASTER SERVICES AGREEMENT" and path[-1] == "12. GOVERNING LAW"
    assert _path_of(CONTRACT, s, "All notices")[-1] == "13.2 Notices"


def test_chapters_en_and_zh() -> None:
    s = extract_structure(NOVEL)
    assert [label for level, label in _labels(s) if label.startswith("CHAPTER")] == ["CHAPTER I", "CHAPTER II"]
    assert "CHAPTER II" in _path_of(NOVEL, s, "They left")
    z = extract_structure(ZH_NOVEL)
    labels = [label for _, label in _labels(z)]
    assert labels[:2] == ["第一回 甄士隐梦幻识通灵", "第二回 贾夫人仙逝扬州城"] or labels[1] == "第二回 贾夫人仙逝扬州城"
    assert "第二章 新的开始" in labels
    assert _path_of(ZH_NOVEL, z, "诗云")[-1] == "第二回 贾夫人仙逝扬州城"


def test_all_caps_heading_lines() -> None:
    s = extract_structure(ALLCAPS)
    assert [label for _, label in _labels(s) if label.isupper()] == ["INVENTORY SUMMARY", "STAFFING CHANGES"]
    assert _path_of(ALLCAPS, s, "Two new")[-1] == "STAFFING CHANGES"


def test_prose_is_not_headings() -> None:
    text = ("It was late. The lamps were lit one by one along the quay.\n"
            "Nobody spoke: the boat was already gone.\n"
            "1. buy milk\n2. call the bank\n")
    assert extract_structure(text).headings == ()
    assert extract_structure(text).turns == ()


def test_chat_export_with_iso_stamps() -> None:
    s = extract_structure(CHAT_ISO)
    assert [(t.speaker, t.date, t.stamp) for t in s.turns] == [
        ("Dana", "2023-05-08", "14:32"), ("Omar", "2023-05-08", "14:33"), ("Dana", "2023-05-09", "09:01")]
    assert _path_of(CHAT_ISO, s, "two seats")[-1] == "Omar"


def test_whatsapp_export() -> None:
    s = extract_structure(WHATSAPP)
    assert [(t.speaker, t.date) for t in s.turns] == [("Dana", "2023-05-08"), ("Omar", "2023-05-08"),
                                                      ("Dana", "2023-05-09")]


def test_meeting_headers_date_the_turns_below() -> None:
    s = extract_structure(MEETING)
    sessions = [h for h in s.headings if h.date]
    assert [(h.label, h.date) for h in sessions] == [("Weekly sync — 2024-03-04", "2024-03-04"),
                                                     ("Meeting notes, March 11, 2024", "2024-03-11")]
    assert [(t.speaker, t.date) for t in s.turns] == [
        ("Priya", "2024-03-04"), ("Tom", "2024-03-04"), ("Priya", "2024-03-04"),
        ("Tom", "2024-03-11"), ("Priya", "2024-03-11")]
    assert _path_of(MEETING, s, "Production rollout") == ("Meeting notes, March 11, 2024", "Tom")
    # A turn ends before the next session header, not after it.
    third = s.turns[2]
    assert MEETING[third.start:third.end] == "Priya: It did, with 20% headroom."


def test_srt_and_vtt_cues() -> None:
    s = extract_structure(SRT)
    assert [(t.stamp, t.speaker) for t in s.turns] == [("00:00:01,000", ""), ("00:00:04,000", "MAYA")]
    assert SRT[s.turns[0].start:s.turns[0].end] == "1\n00:00:01,000 --> 00:00:03,500\nWelcome back to the show."
    v = extract_structure(VTT)
    assert [(t.stamp, t.speaker) for t in v.turns] == [("00:00:01.000", "Sam"), ("00:00:03.500", "Lee")]
    assert _path_of(VTT, v, "It is, go")[-1] == "Lee"


def test_chinese_dialogue_with_dated_header() -> None:
    s = extract_structure(ZH_CHAT)
    assert [(t.speaker, t.date) for t in s.turns] == [("小明", "2023-05-08"), ("小红", "2023-05-08"),
                                                      ("小明", "2023-05-08")]
    assert _path_of(ZH_CHAT, s, "借了") == ("2023年5月8日", "小红")


def test_labels_that_are_not_speakers() -> None:
    text = "Note: the office is closed.\nWarning: wet floor.\nNote: bring a badge.\nNote: lunch is at noon.\n"
    assert extract_structure(text).turns == ()


def test_html_headings_from_the_loader(tmp_path) -> None:
    page = tmp_path / "guide.html"
    page.write_text("<html><head><title>Bird Guide</title></head><body><h1>Finches</h1><p>Goldfinches eat "
                    "thistle.</p><h2>Plumage</h2><p>Males are brighter.</p><h1>Thrushes</h1><p>Snails.</p>"
                    "</body></html>", encoding="utf-8")
    doc = next(iter(load_documents([page])))
    s = extract_structure(doc.text, title=doc.title, metadata=doc.metadata)
    assert s.title == "Bird Guide"
    assert [(h.level, h.label) for h in s.headings if h.kind == "html"] == [(1, "Finches"), (2, "Plumage"),
                                                                            (1, "Thrushes")]
    assert s.path_at(doc.text.index("Males")) == ("Bird Guide", "Finches", "Plumage")


def test_inline_html_heading_tags_in_plain_text() -> None:
    text = "Some page <H1> Tidal Power </H1> <P> Tides turn turbines twice a day . </P> <H2> History </H2> <P> Mills . </P>"
    s = extract_structure(text)
    # The first line's <H1> is the page's title.
    assert s.title == "Tidal Power"
    assert [(h.level, h.label) for h in s.headings] == [(0, "Tidal Power"), (2, "History")]
    assert s.path_at(text.index("Mills")) == ("Tidal Power", "History")


def _pdf(pages: list[str]) -> bytes:
    """A minimal, valid PDF with one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    font = 3 + 2 * len(pages)
    for i, line in enumerate(pages):
        page_obj, content_obj = 3 + 2 * i, 4 + 2 * i
        kids.append(f"{page_obj} 0 R")
        stream = f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_obj} 0 R "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_page_numbers(tmp_path) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(_pdf(["Revenue grew in spring.", "Costs fell in autumn.", "Outlook is stable."]))
    doc = next(iter(load_documents([path])))
    s = extract_structure(doc.text, title=doc.title, metadata=doc.metadata)
    assert [p.number for p in s.pages] == [1, 2, 3]
    assert s.page_at(doc.text.index("Costs")) == 2 and s.page_at(doc.text.index("Outlook")) == 3
    assert doc.metadata["pages"] == 3


def test_dates_en_and_zh() -> None:
    text = "on 8 May, 2023 and May 9th 2023, 2023-05-10, 5/11/23, June 2023, 2023年5月12日, 二〇二三年五月十三日"
    assert [d.iso for d in find_dates(text)] == ["2023-05-08", "2023-05-09", "2023-05-10", "2023-05-11", "2023-06",
                                                 "2023-05-12", "2023-05-13"]
    assert all(text[d.start:d.end] for d in find_dates(text))
    assert [d.iso for d in find_dates("in 2022, we paid $2023", bare_years=True)] == ["2022"]
    assert within("2023-05-08", "2023-05") and within("2023-05-08", "2023") and not within("2023-05-08", "2023-0")


def test_json_round_trip_and_bad_data() -> None:
    s = extract_structure(MEETING)
    back = structure_from_json(s.to_json(), MEETING)
    assert back == s
    assert structure_from_json(s.to_json(), MEETING[:10]) is None  # spans past the text
    assert structure_from_json("{not json", MEETING) is None
    assert structure_from_json('{"v": 99}', MEETING) is None


_PIECES = [
    "# Heading {w}\n", "## Sub {w}\n", "<h2>{w} here</h2>", "CHAPTER {r}\n", "ARTICLE {r}\n", "Section {n}.{n} {W}\n",
    "{n}.{n} {W} Terms\n", "{n}. {U}. The clause text goes on here.\n", "第{z}章 {w}\n", "第{z}回\n", "{U} {U}\n",
    "Session {n} ({n} May, 2023)\n", "[2023-05-0{d} 1{d}:0{d}] {W}: hello {w}\n", "{W}: words {w}.\n",
    "{W}：你好。\n", "00:00:0{d},000 --> 00:00:0{d},500\n", "<v {W}>line\n", "plain sentence about {w}.\n", "\n",
    "   ", "{w} {w} {w}, {w}.\n", "2023年{d}月{d}日\n", "Introduction\n",
]


def _random_document(rng: random.Random) -> str:
    words = ["river", "stone", "Alpha", "beta", "Zed", "mill", "Caro", "Mel", "仓库", "合同"]
    out = []
    for _ in range(rng.randint(1, 40)):
        piece = rng.choice(_PIECES)
        out.append(piece.format(
            w=rng.choice(words), W=rng.choice(["Dana", "Omar", "Priya", "Sam", "Caro", "Mel"]),
            U=rng.choice(["FEES", "TERM", "GOVERNING LAW", "NOTICES"]), n=rng.randint(1, 14),
            r=rng.choice(["I", "IV", "IX", "2"]), z=rng.choice("一二三十"), d=rng.randint(1, 9)))
    return "".join(out)


def _assert_exact(text: str, s: DocumentStructure) -> None:
    for h in s.headings:
        assert 0 <= h.start < h.end <= len(text) and text[h.start:h.end] == h.label and h.label.strip() == h.label
    previous_end = 0
    for t in s.turns:
        assert previous_end <= t.start < t.end <= len(text)
        assert text[t.speaker_start:t.speaker_end] == t.speaker
        assert t.start <= t.speaker_start <= t.speaker_end <= t.end
        previous_end = t.end
    assert structure_from_json(s.to_json(), text) == s


def test_every_span_maps_back_to_the_text_seeded() -> None:
    rng = random.Random(13)
    for _ in range(300):
        text = _random_document(rng)
        _assert_exact(text, extract_structure(text))


def test_every_span_maps_back_to_the_text_property() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    piece = st.sampled_from(_PIECES).map(lambda p: p.format(w="x", W="Ann", U="TERM", n=3, r="IV", z="三", d=4))
    texts = st.lists(st.one_of(piece, st.text(max_size=30)), max_size=25).map("".join)

    @hypothesis.settings(max_examples=examples(200), deadline=None)
    @hypothesis.given(texts)
    def check(text: str) -> None:
        _assert_exact(text, extract_structure(text))

    check()


# --------------------------------------------------------------------------- stored in the index


def test_tables_store_structure_and_old_tables_still_load(tmp_path) -> None:
    from hybridctx.datatypes import Document, Landmark
    from hybridctx.indexers import DocumentTables

    doc = Document("meet", MEETING, title="Sync notes")
    tables = DocumentTables.create()
    tables.add_document(doc, [Landmark("meet", 0, 0, len(MEETING.rstrip()), 0)], [5])
    assert tables.has_structure("meet")
    stored = tables.structure("meet")
    assert [t.speaker for t in stored.turns] == ["Priya", "Tom", "Priya", "Tom", "Priya"]
    path = tmp_path / "tables.sqlite"
    tables.backup_to(path)
    tables.close()

    # An index written before structure was stored: no such table at all.
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE structure")
    conn.commit()
    conn.close()
    old = DocumentTables.open(path)
    assert not old.has_structure("meet")
    assert old.structure("meet") == stored  # computed from the text, never a crash
    assert old.ensure_structure("meet") and old.has_structure("meet")  # stored on the next update
    old.delete_document("meet")
    assert not old.has_structure("meet")
    old.close()


def test_unreadable_stored_structure_is_recomputed(tmp_path) -> None:
    from hybridctx.datatypes import Document, Landmark
    from hybridctx.indexers import DocumentTables

    tables = DocumentTables.create(tmp_path / "t.sqlite")
    tables.add_document(Document("c", CHAT_ISO), [Landmark("c", 0, 0, 10, 0)], [3])
    tables._conn.execute("UPDATE structure SET data = '[1, 2' WHERE doc_id = 'c'")
    assert [t.speaker for t in tables.structure("c").turns] == ["Dana", "Omar", "Dana"]
    tables.close()


def test_old_index_loads_and_gets_structure_on_reindex(tmp_path, encoder, capsys) -> None:
    from hybridctx.indexers import LandmarkStore
    from hybridctx.indexers.landmark_store import TABLES_FILE
    from hybridctx.ingest.indexing import build_index
    from hybridctx.indexers.persistence import read_manifest

    src = tmp_path / "notes.md"
    src.write_text(MARKDOWN, encoding="utf-8")
    index = tmp_path / "idx"
    build_index([src], index, encoder=encoder, show_progress=False)
    store = LandmarkStore.load(index, expected_encoder=dict(encoder.identity))
    (doc_id,) = store.doc_ids()
    paths = store.header_paths(doc_id)
    assert ("Field Guide to Garden Birds", "Finches", "Plumage") in paths
    store.close()

    # Make it an index from before: drop the table and re-seal the manifest's checksum.
    conn = sqlite3.connect(index / TABLES_FILE)
    conn.execute("DROP TABLE structure")
    conn.commit()
    conn.close()
    _reseal(index)
    read_manifest(index, verify=True)
    store = LandmarkStore.load(index, expected_encoder=dict(encoder.identity))
    assert store.header_paths(doc_id) == paths  # computed, never a crash
    store.close()
    _check_info_outline(index, capsys)
    report = build_index([src], index, encoder=encoder, show_progress=False)
    assert report.unchanged == (doc_id,)
    store = LandmarkStore.load(index, expected_encoder=dict(encoder.identity))
    assert store._tables.has_structure(doc_id)
    store.close()


def _check_info_outline(index, capsys) -> None:
    """``hybridctx info --docs --structure``: the outline with offsets, as text and as JSON."""
    import json

    from hybridctx.cli import main

    capsys.readouterr()
    assert main(["info", "--index", str(index), "--docs", "--structure"]) == 0
    out = capsys.readouterr().out
    start = MARKDOWN.index("Plumage")
    assert f"[{start}:{start + len('Plumage')}] Plumage" in out and "4 heading(s); 0 turn(s)" in out
    assert main(["info", "--index", str(index), "--docs", "--structure", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)["documents"]
    outline = doc["structure"]["outline"]
    assert [(h["level"], h["label"]) for h in outline] == [(0, "Field Guide to Garden Birds"), (2, "Finches"),
                                                           (3, "Plumage"), (2, "Thrushes")]
    assert all(MARKDOWN[h["start"]:h["end"]] == h["label"] for h in outline)


def _reseal(index) -> None:
    """Rewrite the manifest's record of the tables file after editing it (as an old version wrote it)."""
    import hashlib
    import json

    manifest_path = index / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    data = (index / "tables.sqlite").read_bytes()
    _replace_file_record(manifest, "tables.sqlite", hashlib.sha256(data).hexdigest(), len(data))
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    manifest_path.write_text(text)
    (index / "manifest.sha256").write_text(f"{hashlib.sha256(text.encode()).hexdigest()}  manifest.json\n")


def _replace_file_record(node, name: str, digest: str, size: int) -> None:
    if isinstance(node, dict):
        if name in node and isinstance(node[name], dict):
            record = node[name]
            for key in list(record):
                if "sha" in key or "hash" in key:
                    record[key] = digest
                elif key in ("size", "bytes"):
                    record[key] = size
        for value in node.values():
            _replace_file_record(value, name, digest, size)
    elif isinstance(node, list):
        for value in node:
            _replace_file_record(value, name, digest, size)


def test_header_path_as_a_bm25_field(encoder) -> None:
    from hybridctx.datatypes import Document
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents
    from hybridctx.retrieval.retriever import RetrievalConfig, Retriever

    filler = " ".join(f"Clause filler sentence number {i} about deliveries and invoices." for i in range(60))
    text = (f"SUPPLY AGREEMENT\n\n1. DELIVERY\n\n{filler}\n\n12. GOVERNING LAW\n\n"
            "This Agreement shall be construed under the statutes of Delaware.\n\n13. NOTICES\n\n" + filler + "\n")
    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents([Document("supply", text)], store, encoder, show_progress=False)
    question = "governing law"
    plain = Retriever(store, encoder, RetrievalConfig(mode="lexical", header_weight=0.0)).candidates(
        question, budget=200)
    headed = Retriever(store, encoder, RetrievalConfig(mode="lexical", header_weight=1.0)).candidates(
        question, budget=200)
    target = text.index("This Agreement shall")
    def covers(c) -> bool:
        return c.sentences[0][0] <= target < c.sentences[-1][1]

    assert not any(covers(c) for c in plain)  # by its own words, only the heading matches
    assert any(covers(c) for c in headed[:2])  # the clause under the heading is found by its header path
    with pytest.raises(Exception, match="header_weight -1"):
        RetrievalConfig(header_weight=-1)


def test_matches_hints_reads_dates_speakers_and_sections() -> None:
    from hybridctx.retrieval.query_hints import hints_for
    from hybridctx.ingest.structure import matches_hints

    s = extract_structure(MEETING)

    def matched(question: str) -> list[str]:
        return [MEETING[t.start:t.end] for t in s.turns if matches_hints(s, t.start, hints_for(question))]

    assert matched("What did Tom say on March 11, 2024?") == ["Tom: Production rollout is set for Thursday."]
    assert len(matched("What happened in March 2024?")) == 5
    assert matched("What was said since 2024-03-05?") == ["Tom: Production rollout is set for Thursday.",
                                                          "Priya: I will write the announcement."]
    assert matched("What is the weather like?") == []
    novel = extract_structure(NOVEL)
    assert matches_hints(novel, NOVEL.index("They left"), hints_for("What happens in chapter 2?"))
    assert not matches_hints(novel, NOVEL.index("The rain"), hints_for("What happens in chapter two?"))
    contract = extract_structure(CONTRACT)
    assert matches_hints(contract, CONTRACT.index("without regard"), hints_for("What does the Governing Law clause say?"))


def test_hint_weight_boosts_hits_under_the_named_speaker_and_date(encoder) -> None:
    from hybridctx.datatypes import Document
    from hybridctx.indexers import LandmarkStore
    from hybridctx.ingest.indexing import index_documents
    from hybridctx.retrieval.retriever import RetrievalConfig, Retriever

    store = LandmarkStore.create(encoder.dim, "Flat", encoder_identity=dict(encoder.identity))
    index_documents([Document("meet", MEETING)], store, encoder, show_progress=False)
    question = "What did Tom say about the rollout on March 11, 2024?"
    timings: dict = {}
    found = Retriever(store, encoder, RetrievalConfig(hint_weight=2.0, growth=GrowthRule(back=0, forward=0))).candidates(
        question, timings=timings, budget=100)
    target = MEETING.index("Tom: Production rollout")
    assert found[0].sentences[0][0] == target and "hints" in timings
    with pytest.raises(Exception, match="hint_weight"):
        RetrievalConfig(hint_weight=-0.5)
