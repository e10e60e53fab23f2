"""Tests for hybridctx.ingest.documents: loaders, ids, exact text, and bad-input errors."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybridctx.datatypes import Document
from hybridctx.ingest.documents import SUPPORTED_SUFFIXES, iter_files, load_documents
from hybridctx.errors import DocumentError, InputError, MissingDependencyError

LEVAL = Path("/work/shared/data/leval/docs.jsonl")


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def load(*paths: Path | str, **kwargs: object) -> list[Document]:
    return list(load_documents(paths, **kwargs))  # type: ignore[arg-type]


def one_error(*paths: Path | str) -> DocumentError:
    with pytest.raises(DocumentError) as info:
        load(*paths)
    return info.value


def make_pdf(pages: list[str]) -> bytes:
    """A minimal, valid PDF with one line of Helvetica text per page."""
    n = len(pages)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{4 + 2 * i} 0 R".encode() for i in range(n))
        + f"] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# --------------------------------------------------------------------------- exact text


def test_text_is_kept_byte_for_byte(tmp_path: Path) -> None:
    text = "Line one\r\n\tindented  \r\nold mac\rtrailing   \n中文句子。🙂 emoji\u2028x\n\n"
    (tmp_path / "a.txt").write_bytes(text.encode("utf-8"))
    (tmp_path / "b.md").write_bytes(text.encode("utf-8"))
    docs = load(tmp_path / "a.txt", tmp_path / "b.md")
    assert [d.text for d in docs] == [text, text]
    assert [d.doc_id for d in docs] == ["a.txt", "b.md"]
    assert docs[0].source == str(tmp_path / "a.txt")
    assert docs[0].title is None


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfhello\r\n")
    assert load(tmp_path / "bom.txt")[0].text == "hello\r\n"


def test_jsonl_text_is_kept_exactly(tmp_path: Path) -> None:
    texts = ["  lead\r\nCRLF\ttab  ", "中文，标点。\n🙂🎉", "a\u2028b\u0085c\rd"]
    path = write_jsonl(
        tmp_path / "docs.jsonl", [{"doc_id": f"d{i}", "text": t} for i, t in enumerate(texts)]
    )
    docs = load(path)
    assert [d.text for d in docs] == texts
    assert [d.source for d in docs] == [f"{path}:1", f"{path}:2", f"{path}:3"]


def test_jsonl_fields_ids_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        json.dumps({"doc_id": "x", "text": "T", "title": "Tt", "metadata": {"k": 1}, "source": "s"})
        + "\n\n   \n"
        + json.dumps({"text": "no id"})
        + "\r\n",
        "utf-8",
    )
    first, second = load(path)
    assert (first.doc_id, first.title, dict(first.metadata)) == ("x", "Tt", {"k": 1, "source": "s"})
    assert second.doc_id == "set.jsonl#4"  # blank lines count in line numbers
    assert second.source == f"{path}:4"
    assert second.title is None and dict(second.metadata) == {}


# --------------------------------------------------------------------------- ids and order


def make_tree(root: Path) -> None:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "b.txt").write_text("b", "utf-8")
    (root / "a.md").write_text("a", "utf-8")
    (root / "Z.txt").write_text("Z", "utf-8")
    (root / "sub" / "c.TXT").write_text("c", "utf-8")
    (root / "sub" / "deep" / "d.txt").write_text("d", "utf-8")
    (root / "sub" / "skip.docx").write_text("not read", "utf-8")
    (root / ".secret.txt").write_text("hidden", "utf-8")
    (root / ".hidden" / "e.txt").write_text("hidden", "utf-8")
    write_jsonl(root / "sub" / "set.jsonl", [{"doc_id": "j1", "text": "j"}])


def test_directory_recursion_order_and_ids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    make_tree(root)
    caplog.set_level(logging.INFO, logger="hybridctx.ingest.documents")
    files = [p.relative_to(root).as_posix() for p in iter_files([root])]
    assert files == ["Z.txt", "a.md", "b.txt", "sub/c.TXT", "sub/deep/d.txt", "sub/set.jsonl"]
    assert "skip.docx" in caplog.text
    ids = [d.doc_id for d in load(root)]
    assert ids == [
        "corpus/Z.txt", "corpus/a.md", "corpus/b.txt", "corpus/sub/c.TXT",
        "corpus/sub/deep/d.txt", "j1",
    ]  # fmt: skip
    # Same ids however the directory is spelled, and on every run.
    cwd = os.getcwd()
    try:
        os.chdir(root)
        assert [d.doc_id for d in load(".")] == ids
        os.chdir(root / "sub")
        assert [d.doc_id for d in load("..")] == ids
    finally:
        os.chdir(cwd)
    assert [d.doc_id for d in load(str(root) + os.sep)] == ids


def test_symlinked_dirs_are_not_followed_and_empty_dirs_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.txt").write_text("a", "utf-8")
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    assert [d.doc_id for d in load(root)] == ["root/real/a.txt"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.csv").write_text("1,2", "utf-8")
    caplog.set_level(logging.INFO, logger="hybridctx.ingest.documents")
    assert load(tmp_path / "empty") == []
    assert "holds no supported files" in caplog.text


def test_single_path_argument_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("one", "utf-8")
    assert [d.doc_id for d in load_documents(tmp_path / "one.txt")] == ["one.txt"]
    assert list(iter_files(str(tmp_path / "one.txt"))) == [tmp_path / "one.txt"]


def test_supported_suffixes() -> None:
    assert set(SUPPORTED_SUFFIXES) == {".txt", ".md", ".html", ".htm", ".pdf", ".jsonl"}


def test_loading_is_lazy(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"doc_id": "a", "text": "x"}, "not an object"])
    gen = load_documents([tmp_path / "a.jsonl"])
    assert next(gen).doc_id == "a"  # the good line arrives before the bad one is read
    with pytest.raises(DocumentError):
        next(gen)


# --------------------------------------------------------------------------- HTML


def test_html_visible_text_title_and_entities(tmp_path: Path) -> None:
    html = (
        "<!DOCTYPE html><html><head><title> The  &amp; Title </title>"
        "<style>p { color: red }</style><script>var x = '<p>no</p>';</script></head>"
        "<body><h1>Head&nbsp;line</h1><p>Caf&eacute; &lt;tag&gt; &#x4e2d;文\n   wrapped</p>"
        "<ul><li>one</li><li>two</li></ul>line<br>break<script src='x.js'/>"
        "<pre>  keep\n    this</pre><noscript>enable js</noscript></body></html>"
    )
    (tmp_path / "page.HTML").write_text(html, "utf-8")
    (doc,) = load(tmp_path / "page.HTML")
    assert doc.title == "The & Title"
    assert doc.doc_id == "page.HTML"
    assert doc.text == (
        "Head\u00a0line\n\nCafé <tag> 中文 wrapped\n\none\ntwo\n\nline\nbreak\n\n"
        "  keep\n    this"
    )
    assert "var x" not in doc.text and "color" not in doc.text and "enable js" not in doc.text


def test_html_inline_spacing_tables_and_line_breaks(tmp_path: Path) -> None:
    html = (
        "<body>\n  <b>bold</b> <i>italic</i>  text\n"
        "<table><tr><td>a</td><td> b </td></tr>\n<tr><th>c</th><td>d</td></tr></table>"
        "one<br><br>two<div>  <span>in div</span>  </div><pre>x  </pre>after</body>"
    )
    (tmp_path / "t.html").write_text(html, "utf-8")
    (doc,) = load(tmp_path / "t.html")
    assert doc.title is None
    assert doc.text == "bold italic text\n\na b\nc d\n\none\n\ntwo\nin div\n\nx  \n\nafter"


def test_html_without_visible_text_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "blank.htm").write_text("<html><script>x()</script><p> </p></html>", "utf-8")
    err = one_error(tmp_path / "blank.htm")
    assert "blank.htm" in str(err) and "no visible text" in str(err)


# --------------------------------------------------------------------------- PDF


def test_pdf_pages_joined_by_blank_line(tmp_path: Path) -> None:
    (tmp_path / "two.pdf").write_bytes(make_pdf(["Hello first page", "Second page here"]))
    (doc,) = load(tmp_path / "two.pdf")
    assert doc.doc_id == "two.pdf"
    assert doc.text == "Hello first page\n\nSecond page here"
    assert doc.metadata["pages"] == 2


def test_pdf_without_text_is_an_error(tmp_path: Path) -> None:
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    with (tmp_path / "scan.pdf").open("wb") as fh:
        writer.write(fh)
    err = one_error(tmp_path / "scan.pdf")
    assert "scan.pdf" in str(err) and "no extractable text" in str(err)


def test_corrupt_pdf_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    err = one_error(tmp_path / "bad.pdf")
    assert "bad.pdf" in str(err) and "not a readable PDF" in str(err)


def test_missing_pypdf_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.pdf").write_bytes(make_pdf(["x"]))
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes `import pypdf` fail
    with pytest.raises(MissingDependencyError, match=r"hybridctx\[pdf\]"):
        load(tmp_path / "a.pdf")


def test_import_does_not_load_pypdf() -> None:
    code = "import sys, hybridctx.ingest.documents; sys.exit('pypdf' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "file is empty"),
        (b" \r\n\t\n", "only whitespace"),
        (b"\xef\xbb\xbf", "file is empty"),
        (b"abc\x00def", "binary (NUL byte at byte offset 3)"),
        (b"\xff\xfeh\x00i\x00", "UTF-16"),
        (b"ok text \xe9 bad", "not valid UTF-8 (byte 0xe9 at byte offset 8)"),
        (b"\xef\xbb\xbfok \xc3", "byte offset 6"),
    ],
)
def test_bad_text_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    err = one_error(path)
    assert isinstance(err, InputError) and isinstance(err, ValueError)
    assert err.path == str(path) and err.line is None
    assert str(err).startswith(f"{path}: ")
    assert expected in str(err)
    assert "\n" not in str(err)


def test_missing_file(tmp_path: Path) -> None:
    for name in ("nope.txt", "nope.jsonl", "nope.docx"):
        err = one_error(tmp_path / name)
        assert str(err) == f"{tmp_path / name}: file does not exist"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked.txt"
    locked.write_text("secret", "utf-8")
    locked_jsonl = write_jsonl(tmp_path / "locked.jsonl", [{"text": "x"}])
    real_open = Path.open

    def guarded_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self.name.startswith("locked"):
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    real_os_open = os.open

    def guarded_os_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        if os.path.basename(path).startswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_os_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    # Root reads any file whatever its mode, so the denial is simulated (the loader opens with os.open).
    monkeypatch.setattr(Path, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    for path in (locked, locked_jsonl):
        err = one_error(path)
        assert str(err) == f"{path}: file cannot be read: permission denied"


def test_explicit_unsupported_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")
    err = one_error(tmp_path / "notes.docx")
    assert "notes.docx" in str(err) and "unsupported file type '.docx'" in str(err)
    assert ".jsonl" in str(err)


# --------------------------------------------------------------------------- bad JSONL lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"doc_id": "a", "text": ', "line 2 is not valid JSON"),
        ('["a", "b"]', "line 2 is a JSON array, not an object"),
        ('"just a string"', "line 2 is a JSON string, not an object"),
        ('{"doc_id": "a"}', 'line 2 has no "text" field'),
        ('{"doc_id": "a", "text": 5}', 'line 2 has a "text" that is a JSON number'),
        ('{"doc_id": "a", "text": null}', 'line 2 has a "text" that is a JSON null'),
        ('{"doc_id": "a", "text": ""}', 'line 2 has an empty "text"'),
        ('{"doc_id": "a", "text": " \\n "}', 'line 2 has an empty "text"'),
        ('{"doc_id": 7, "text": "x"}', 'line 2 has a "doc_id" that is a JSON number'),
        ('{"doc_id": "", "text": "x"}', 'line 2 has an empty "doc_id"'),
        ('{"doc_id": "a", "text": "x", "title": 3}', 'line 2 has a "title" that is a JSON number'),
        (
            '{"doc_id": "a", "text": "x", "metadata": [1]}',
            'line 2 has a "metadata" that is a JSON array',
        ),
    ],
)
def test_bad_jsonl_lines(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"doc_id": "ok", "text": "fine"}\n' + line + "\n", "utf-8")
    err = one_error(path)
    assert err.path == str(path) and err.line == 2
    assert str(err).startswith(f"{path}:2: {expected}")
    assert str(err).endswith('each line must be {"doc_id": ..., "text": ...}')
    assert "\n" not in str(err)


def test_jsonl_message_example(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n" * 6 + '{"doc_id": "x"}\n', "utf-8")
    assert str(one_error(path)) == (
        f'{path}:7: line 7 has no "text" field; each line must be {{"doc_id": ..., "text": ...}}'
    )


def test_jsonl_invalid_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "enc.jsonl"
    first = b'{"doc_id": "a", "text": "x"}\n'
    path.write_bytes(first + b'{"doc_id": "b", "text": "\xff"}\n')
    err = one_error(path)
    assert err.line == 2
    assert f"byte 0xff at byte offset {len(first) + 25}" in str(err)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "file is empty"), (b"\n  \n\r\n", "file is empty"), (b"{\x00}", "binary")],
)
def test_bad_jsonl_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    err = one_error(path)
    assert err.line is None and str(err).startswith(f"{path}: ") and expected in str(err)


def test_duplicate_ids_name_both_places(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"doc_id": "x", "text": "1"}])
    b = write_jsonl(
        tmp_path / "b.jsonl", [{"doc_id": "y", "text": "2"}, {"doc_id": "x", "text": "3"}]
    )
    err = one_error(a, b)
    assert err.path == str(b) and err.line == 2
    assert f"first at {a}:1" in str(err) and "'x'" in str(err)
    (tmp_path / "book.txt").write_text("text", "utf-8")
    err = one_error(tmp_path / "book.txt", tmp_path / "book.txt")
    assert f"'book.txt' is used twice: first at {tmp_path / 'book.txt'}" in str(err)


# --------------------------------------------------------------------------- skip_bad


def test_skip_bad_collects_errors_and_keeps_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tmp_path / "good.txt"
    good.write_text("good", "utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        '{"doc_id": "m1", "text": "one"}\nnot json\n{"doc_id": "m2"}\n'
        '{"doc_id": "m1", "text": "again"}\n{"doc_id": "m3", "text": "three"}\n',
        "utf-8",
    )
    errors: list[DocumentError] = []
    caplog.set_level(logging.WARNING, logger="hybridctx.ingest.documents")
    docs = load(
        tmp_path / "empty.txt", good, mixed, tmp_path / "missing.md", skip_bad=True, errors=errors
    )
    assert [d.doc_id for d in docs] == ["good.txt", "m1", "m3"]
    assert [(Path(e.path).name, e.line) for e in errors] == [
        ("empty.txt", None), ("mixed.jsonl", 2), ("mixed.jsonl", 3), ("mixed.jsonl", 4),
        ("missing.md", None),
    ]  # fmt: skip
    assert [r.getMessage() for r in caplog.records] == [str(e) for e in errors]
    # Without a list to fill, skipping still works.
    assert len(load(mixed, skip_bad=True)) == 2


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(not LEVAL.exists(), reason="shared leval data not present")
def test_leval_docs_load_exactly() -> None:
    docs = load(LEVAL)
    assert len(docs) == 104
    with LEVAL.open("rb") as fh:
        for doc, raw in zip(docs, fh):
            record = json.loads(raw)
            assert doc.doc_id == record["doc_id"]
            assert doc.text == record["text"]
            assert doc.title == record.get("title")
