"""Loading documents from files and directories, text kept exactly as given.

This module owns what ``hybridctx index PATH...`` reads: it expands
directories, picks a reader by suffix, derives stable document ids, and turns
every kind of bad input into one clear :class:`~hybridctx.errors.DocumentError`.
It exists so that every later stage can trust one thing: a document's ``text``
is exactly what the user gave (JSONL ``text``, or the file's decoded UTF-8),
so character offsets reported by retrieval map back to the source.

Supported inputs (suffixes are matched case-insensitively):

* ``.txt``, ``.md``: the file decoded as UTF-8, byte for byte. Newlines are not
  converted and nothing is stripped; only a leading UTF-8 byte-order mark is
  dropped (it is an encoding marker, not text).
* ``.html``, ``.htm``: the visible text, extracted with the standard library's
  :mod:`html.parser` (scripts, styles and ``<head>`` dropped, entities
  unescaped, block elements turned into line breaks). Offsets refer to this
  extracted text. ``<title>`` becomes the document title.
* ``.pdf``: the text of each page (via the optional ``pypdf`` package), pages
  joined by a blank line (``"\\n\\n"``).
* ``.jsonl``: one document per line,
  ``{"doc_id": str, "text": str, "title"?: str, "metadata"?: object}``. Other
  keys are kept in the document's metadata. Blank lines are skipped.

Only regular files (and directories of them) are read: a FIFO, a device such
as ``/dev/zero`` or a socket is refused before it is opened (reading one would
block forever or never end). A JSONL line must be valid Unicode (no lone
``\\ud800``-style surrogate escapes), its numbers readable (integers of at most
4,300 digits) and its ``metadata`` at most :data:`MAX_METADATA_DEPTH` levels deep.

Document ids are stable across runs and machines: a JSONL ``doc_id`` as given
(``<file name>#<line>`` when absent); a file named directly is known by its
file name (``book.txt``); a file found under a directory argument ``DIR`` by
``<DIR name>/<path relative to DIR, with forward slashes>``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hybridctx.datatypes import Document
from hybridctx.errors import DocumentError, MissingDependencyError

__all__ = ["SUPPORTED_SUFFIXES", "iter_files", "load_documents"]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".html", ".htm", ".pdf", ".jsonl")
"""File suffixes :func:`load_documents` reads (compared in lower case)."""

MAX_METADATA_DEPTH = 100
"""Deepest nesting of arrays and objects a JSONL line's metadata may have.

Why a limit: the index stores metadata as JSON and parses it again when a
document is read back; Python's JSON parser recurses once per level and stops
near 1,000 levels (``RecursionError``), so metadata close to that limit would
load here and then fail later, inside a search."""

_TEXT_SUFFIXES = frozenset({".txt", ".md"})
_HTML_SUFFIXES = frozenset({".html", ".htm"})
_BOM = b"\xef\xbb\xbf"
_JSONL_KEYS = frozenset({"doc_id", "text", "title", "metadata"})
_JSONL_SHAPE = 'each line must be {"doc_id": ..., "text": ...}'
# How much of a JSONL file is sniffed for NUL bytes before parsing line by
# line: enough to recognise a binary file without reading all of it.
_SNIFF_BYTES = 8192
# A lone UTF-16 surrogate: JSON allows "\ud800" escapes, UTF-8 (and SQLite) cannot hold them.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_FILE_KINDS = (
    (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
)

PathArg = str | os.PathLike[str]


# --------------------------------------------------------------------------- files


def iter_files(paths: Iterable[PathArg] | PathArg) -> Iterator[Path]:
    """Expand files and directories into the files to load, in a stable order.

    A file argument is yielded as given, whatever its suffix (the loader
    reports an unsupported one). A directory is walked recursively; its files
    are yielded sorted by their relative path (code-point order, the same on
    every machine). Inside directories, hidden files and directories (name
    starting with ``.``) are skipped, as are files with an unsupported suffix
    (logged at INFO) and symlinked directories (not followed, to avoid loops).
    A path that does not exist is yielded unchanged so the loader can report it.

    Args:
        paths: files and directories; a single path is accepted too.

    Yields:
        Paths of files, each directory's files under that directory's path.
    """
    for path, _ in _expand(paths):
        yield path


def _expand(paths: Iterable[PathArg] | PathArg) -> Iterator[tuple[Path, str]]:
    """Yield ``(file path, default document id)`` for every file to load."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for arg in paths:
        root = Path(arg)
        if not root.is_dir():
            yield root, root.name
            continue
        prefix = os.path.basename(os.path.normpath(os.path.abspath(root)))
        found = 0
        for rel in _walk(root):
            found += 1
            rel_id = rel.as_posix()
            yield root / rel, f"{prefix}/{rel_id}" if prefix else rel_id
        if not found:
            logger.warning("directory %s holds no supported files (%s)", root, _suffix_list())


def _walk(root: Path) -> list[Path]:
    """Relative paths of the supported, non-hidden files under ``root``, sorted."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_walk_error, followlinks=False):
        here = Path(dirpath)
        keep = []
        for name in dirnames:
            if name.startswith("."):
                continue
            if (here / name).is_symlink():
                logger.info("not following symlinked directory %s", here / name)
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            if name.startswith("."):
                continue
            full = here / name
            if full.suffix.lower() not in SUPPORTED_SUFFIXES:
                logger.info("skipping %s: unsupported file type", full)
                continue
            if not full.is_file():
                logger.info("skipping %s: not a regular file", full)
                continue
            found.append(full.relative_to(root))
    found.sort(key=lambda rel: rel.parts)
    return found


def _walk_error(exc: OSError) -> None:
    # os.walk would otherwise drop an unreadable subdirectory without a word.
    logger.warning("skipping directory %s: %s", exc.filename, exc.strerror or exc)


def _suffix_list() -> str:
    return " ".join(SUPPORTED_SUFFIXES)


# --------------------------------------------------------------------------- loading


def load_documents(
    paths: Iterable[PathArg] | PathArg,
    *,
    skip_bad: bool = False,
    errors: list[DocumentError] | None = None,
) -> Iterator[Document]:
    """Read documents from files and directories, one at a time.

    This is a generator: it holds one document at a time (JSONL files are read
    line by line), so documents are handed to the caller *before* a later
    input may turn out to be bad. Callers that must be all-or-nothing (the
    indexer) write into a temporary place and commit only after the generator
    is exhausted.

    Args:
        paths: files and directories (see the module docstring for what is
            read and how ids are derived); a single path is accepted too.
        skip_bad: when true, a bad file or JSONL line is skipped: its error is
            logged at WARNING, appended to ``errors``, and loading goes on.
            When false, the first bad input raises.
        errors: receives every error skipped under ``skip_bad``.

    Yields:
        One :class:`Document` per file, or per JSONL line.

    Raises:
        DocumentError: a file or JSONL line is unusable (missing, unreadable,
            empty, binary, not UTF-8, malformed JSONL, unsupported suffix) or a
            document id repeats within this call; only when ``skip_bad`` is
            false.
        MissingDependencyError: a PDF is met and ``pypdf`` is not installed.
    """
    seen: dict[str, str] = {}
    for path, default_id in _expand(paths):
        for item in _read_path(path, default_id):
            if isinstance(item, Document):
                first = seen.get(item.doc_id)
                if first is None:
                    seen[item.doc_id] = item.source or str(path)
                    yield item
                    continue
                path_str, line = _split_source(item.source, path)
                item = DocumentError(
                    path_str,
                    f"document id {item.doc_id!r} is used twice: first at {first}, "
                    f"again here; document ids must be unique across all inputs",
                    line=line,
                )
            if not skip_bad:
                raise item
            logger.warning("%s", item)
            if errors is not None:
                errors.append(item)


def _split_source(source: str | None, path: Path) -> tuple[str, int | None]:
    """Recover (path, line) from a JSONL ``path:line`` source, for error messages."""
    if source is not None and source != str(path):
        head, _, tail = source.rpartition(":")
        if head == str(path) and tail.isdigit():
            return head, int(tail)
    return str(path), None


def _read_path(path: Path, doc_id: str) -> Iterator[Document | DocumentError]:
    """Documents of one file, or the errors met reading it, in file order."""
    suffix = path.suffix.lower()
    try:
        _check_regular(path)
    except DocumentError as err:
        yield err
        return
    if suffix == ".jsonl":
        yield from _read_jsonl(path)
        return
    try:
        if suffix not in SUPPORTED_SUFFIXES:
            raise DocumentError(
                str(path),
                f"unsupported file type {path.suffix or '(no suffix)'!r}; "
                f"hybridctx reads {_suffix_list()}",
            )
        data = _read_bytes(path)
        if suffix in _TEXT_SUFFIXES:
            yield Document(doc_id=doc_id, text=_decode_text(path, data), source=str(path))
        elif suffix in _HTML_SUFFIXES:
            title, text, headings = _html_to_text(_decode_text(path, data))
            if not text.strip():
                raise DocumentError(str(path), "HTML file has no visible text")
            metadata = {"headings": headings} if headings else {}
            yield Document(doc_id=doc_id, text=text, title=title, metadata=metadata, source=str(path))
        else:
            text, page_starts = _pdf_to_text(path, data)
            yield Document(doc_id=doc_id, text=text, metadata={"pages": len(page_starts), "page_starts": page_starts},
                           source=str(path))
    except DocumentError as err:
        yield err


def _check_regular(path: Path) -> None:
    """Refuses, without opening it, a path that is missing or not a regular file (symlinks followed)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _os_error(path, exc) from None
    except ValueError:  # a NUL character in the name
        raise DocumentError(str(path), "file name holds a NUL character") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "special file")
        raise DocumentError(str(path), f"is a {kind}, not a regular file; hybridctx reads regular files "
                                       "and directories of them")


def _open_regular(path: Path) -> io.BufferedReader:
    """Opens ``path`` for reading, refusing it if it turned into something else since it was checked.

    ``O_NONBLOCK`` keeps a FIFO swapped in after :func:`_check_regular` from blocking the open;
    it changes nothing for a regular file.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DocumentError(str(path), "is not a regular file; hybridctx reads regular files and directories of them")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_bytes(path: Path) -> bytes:
    """Read a whole file, turning OS errors into a ``DocumentError``; rejects empty files."""
    try:
        with _open_regular(path) as fh:
            data = fh.read()
    except OSError as exc:
        raise _os_error(path, exc) from None
    if not data:
        raise DocumentError(str(path), "file is empty")
    return data


def _os_error(path: Path, exc: OSError) -> DocumentError:
    """The ``DocumentError`` for a file the operating system would not let us read."""
    if isinstance(exc, FileNotFoundError):
        return DocumentError(str(path), "file does not exist")
    if isinstance(exc, PermissionError):
        return DocumentError(str(path), "file cannot be read: permission denied")
    return DocumentError(str(path), f"file cannot be read: {exc.strerror or exc}")


def _decode_text(path: Path, data: bytes) -> str:
    """Decode UTF-8 exactly (leading BOM dropped), rejecting binary and blank files."""
    nul = data.find(b"\x00")
    if nul >= 0:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            reason = "file is UTF-16 encoded; save it as UTF-8"
        else:
            reason = (
                f"file looks binary (NUL byte at byte offset {nul}); "
                "text files must be UTF-8"
            )
        raise DocumentError(str(path), reason)
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        raise DocumentError(
            str(path),
            f"file is not valid UTF-8 (byte 0x{data[offset]:02x} at byte offset {offset}); "
            "save it as UTF-8",
        ) from None
    if not text.strip():
        raise DocumentError(str(path), "file is empty (only whitespace)")
    return text


# --------------------------------------------------------------------------- JSONL


def _read_jsonl(path: Path) -> Iterator[Document | DocumentError]:
    """Documents of a JSONL file, read line by line; a bad line yields its error."""
    name = str(path)
    try:
        fh = _open_regular(path)
    except OSError as exc:
        yield _os_error(path, exc)
        return
    except DocumentError as err:
        yield err
        return
    with fh:
        head = fh.read(_SNIFF_BYTES)
        nul = head.find(b"\x00")
        if nul >= 0:
            yield DocumentError(
                name, f"file looks binary (NUL byte at byte offset {nul}); JSONL must be UTF-8 text"
            )
            return
        fh.seek(0)
        offset = 0  # byte offset of the current line, for encoding errors
        seen_content = False
        for lineno, raw in enumerate(fh, start=1):
            start = offset
            offset += len(raw)
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
                start += len(_BOM)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                seen_content = True
                yield DocumentError(
                    name,
                    f"line {lineno} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} "
                    f"at byte offset {start + exc.start}); save the file as UTF-8",
                    line=lineno,
                )
                continue
            if not line.strip():
                continue
            seen_content = True
            try:
                yield _jsonl_document(path, lineno, line)
            except DocumentError as err:
                yield err
        if not seen_content:
            yield DocumentError(name, "file is empty (no JSON lines)")


def _jsonl_document(path: Path, lineno: int, line: str) -> Document:
    """Validate one JSONL line and build its document."""

    def fail(reason: str) -> DocumentError:
        return DocumentError(str(path), f"line {lineno} {reason}; {_JSONL_SHAPE}", line=lineno)

    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise fail(f"is not valid JSON ({json_error(exc)})") from None
    except RecursionError:
        raise fail("nests arrays or objects too deeply for Python's JSON parser (about 1,000 levels)") from None
    except ValueError as exc:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
        raise fail(f"holds a number Python's JSON parser refuses ({str(exc).split(';')[0]}); "
                   "write it as a string") from None
    if not isinstance(record, dict):
        raise fail(f"is a JSON {_json_type(record)}, not an object")
    if "text" not in record:
        raise fail('has no "text" field')
    text = record["text"]
    if not isinstance(text, str):
        raise fail(f'has a "text" that is a JSON {_json_type(text)}, not a string')
    if not text.strip():
        raise fail('has an empty "text" (or only whitespace)')
    if "doc_id" in record:
        doc_id = record["doc_id"]
        if not isinstance(doc_id, str):
            raise fail(
                f'has a "doc_id" that is a JSON {_json_type(doc_id)}, not a string '
                "(omit it to derive one from the file name and line)"
            )
        if not doc_id.strip():
            raise fail('has an empty "doc_id" (omit it to derive one from the file name and line)')
    else:
        doc_id = f"{path.name}#{lineno}"
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise fail(f'has a "title" that is a JSON {_json_type(title)}, not a string')
    metadata: dict[str, Any] = {k: v for k, v in record.items() if k not in _JSONL_KEYS}
    extra = record.get("metadata")
    if extra is not None:
        if not isinstance(extra, dict):
            raise fail(f'has a "metadata" that is a JSON {_json_type(extra)}, not an object')
        metadata.update(extra)
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise fail(f"has metadata nested more than {MAX_METADATA_DEPTH} levels deep; hybridctx keeps at most "
                   f"{MAX_METADATA_DEPTH}")
    if _SURROGATE_ESCAPE.search(line):  # only a \uD800-\uDFFF escape can put a surrogate in a decoded line
        for field, value in (("text", text), ("doc_id", doc_id), ("title", title or ""),
                             ("metadata", json.dumps(metadata, ensure_ascii=False))):
            found = _SURROGATE.search(value)
            if found:
                raise fail(f'has a lone surrogate \\u{ord(found.group()):04x} in its "{field}" (at character '
                           f"{found.start()}); a \\ud800-\\udfff escape must be one half of a pair")
    return Document(
        doc_id=doc_id, text=text, title=title, metadata=metadata, source=f"{path}:{lineno}"
    )


def json_error(exc: json.JSONDecodeError) -> str:
    """What a JSON parse error says, with its column: ``Expecting value at column 7``."""
    # Some messages already end in "at" ("Invalid control character at"): no "at at column".
    return f"{exc.msg.removesuffix(' at')} at column {exc.colno}"


def _depth(value: object) -> int:
    """Nesting depth of arrays and objects in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        level += 1
        deepest = max(deepest, level)
        if level <= MAX_METADATA_DEPTH:  # deeper is refused anyway: stop counting
            stack.extend((child, level) for child in item)
    return deepest


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --------------------------------------------------------------------------- HTML

# Elements whose content is never visible text. <head> is not listed: its end
# tag is often omitted, and what it holds (title, script, style) is handled anyway.
_HIDDEN_TAGS = frozenset({"script", "style", "template", "noscript"})
# Elements that start a paragraph (a blank line before and after).
_PARAGRAPH_TAGS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol",
        "dl", "section", "article", "aside", "header", "footer", "nav", "main", "figure",
        "form", "fieldset", "details", "address", "hr",
    }
)  # fmt: skip
# Elements that start a new line.
_LINE_TAGS = frozenset(
    {"br", "div", "li", "tr", "dt", "dd", "caption", "figcaption", "summary", "option", "body"}
)
_CELL_TAGS = frozenset({"td", "th"})
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML's own whitespace; &nbsp; survives


class _VisibleText(HTMLParser):
    """Collects the visible text and the ``<title>`` of an HTML page.

    Whitespace is laid out roughly as a browser would: runs of spaces collapse
    to one (except inside ``<pre>``), no space is kept at either end of a line,
    block elements start a new line and paragraph-like ones a blank line.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._hidden = 0
        self._pre = 0
        self._in_title = False
        self._newlines = 0  # line breaks owed before the next text (0, 1 or 2)
        self._space = False  # a space owed before the next text (between cells)
        self._at_line_start = True
        self._last_pre = False  # whether the last part came from inside <pre>
        self.headings: list[list[int]] = []  # [start, end, level] of each <h1>-<h6> in the text
        self._heading: list[int] | None = None  # [start or -1, level] of the open heading

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _HIDDEN_TAGS:
            self._hidden += 1
        else:
            self._break(tag)
            if tag == "pre":
                self._pre += 1
            elif tag in _HEADING_TAGS and not self._hidden:
                self._heading = [-1, int(tag[1])]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # A self-closed element (<br/>, <script/>) has no content to hide.
        if tag not in _HIDDEN_TAGS and tag != "title":
            self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag != "br":
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            elif tag in _HEADING_TAGS and self._heading is not None:
                if self._heading[0] >= 0:
                    self.headings.append([self._heading[0], sum(len(p) for p in self.parts), self._heading[1]])
                self._heading = None
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._hidden:
            return
        if not self._pre:
            data = _HTML_SPACE.sub(" ", data)
            if self._at_line_start or self._newlines or self._space or self._ends_with_space():
                data = data.lstrip(" ")
            if not data:
                return
        if self.parts and self._newlines:
            self._trim_trailing_space()
            self.parts.append("\n" * self._newlines)
        elif self.parts and self._space:
            self.parts.append(" ")
        if self._heading is not None and self._heading[0] < 0:
            self._heading[0] = sum(len(p) for p in self.parts)
        self.parts.append(data)
        self._newlines = 0
        self._space = False
        self._at_line_start = data.endswith("\n")
        self._last_pre = bool(self._pre)

    def get_text(self) -> str:
        self._trim_trailing_space()
        return "".join(self.parts)

    def _break(self, tag: str) -> None:
        if self._hidden:
            return
        if tag == "br":
            self._newlines = min(2, self._newlines + 1)
        elif tag in _PARAGRAPH_TAGS:
            self._newlines = 2
        elif tag in _LINE_TAGS:
            self._newlines = max(1, self._newlines)
        elif tag in _CELL_TAGS:
            self._space = True

    def _ends_with_space(self) -> bool:
        return bool(self.parts) and self.parts[-1].endswith(" ") and not self._last_pre

    def _trim_trailing_space(self) -> None:
        if self.parts and not self._last_pre:
            self.parts[-1] = self.parts[-1].rstrip(" ")


def _html_to_text(html: str) -> tuple[str | None, str, list[list[int]]]:
    """Return ``(title or None, visible text, [[start, end, level], ...] of its headings)``."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    title = _HTML_SPACE.sub(" ", "".join(parser.title_parts)).strip() or None
    text = parser.get_text()
    headings = [[s, min(e, len(text)), level] for s, e, level in parser.headings if s < min(e, len(text))]
    return title, text, headings


# --------------------------------------------------------------------------- PDF


def _pdf_to_text(path: Path, data: bytes) -> tuple[str, list[int]]:
    """Return ``(text of all pages joined by a blank line, offset where each page starts)``."""
    try:
        import pypdf
        from pypdf.errors import PyPdfError
    except ImportError:
        raise MissingDependencyError("pypdf", "pdf", "reading PDF files") from None
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError(str(path), "PDF is encrypted; decrypt it first")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        # pypdf signals a malformed file with its own errors and a few builtins.
        raise DocumentError(str(path), f"file is not a readable PDF ({exc})") from None
    text = "\n\n".join(pages)
    if not text.strip():
        raise DocumentError(
            str(path), "PDF has no extractable text (a scanned PDF needs OCR first)"
        )
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + 2
    return text, starts
