"""Training examples for landmark encoders: QA files, inverse-cloze pairs, LLM questions.

Why one shape for all: every source ends as a query plus the character
ranges of its evidence in one or more documents; the trainer maps the ranges
to the landmarks (sentences) the indexer would make. QA files in the
``../shared/data`` format give real questions; inverse-cloze pairs need only
documents (a pseudo-query drawn from a run of consecutive sentences, whose
last landmark is the target), so a user can adapt to an unlabelled corpus;
an LLM can write questions for such runs, cached on disk so a rerun costs
nothing. Splits are by document and seeded: no evaluated document is trained on.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from hybridctx.errors import InputError

__all__ = [
    "Example",
    "inverse_cloze",
    "load_documents_dir",
    "load_qa",
    "split_documents",
    "split_long",
    "synthetic_questions",
]

_WORD = re.compile(r"\w[\w'-]*", re.UNICODE)


@dataclass(frozen=True)
class Example:
    """One query and where its evidence is.

    Attributes:
        query: the question (or pseudo-query).
        evidence: ``(doc_id, start, end)`` character ranges of the gold text.
        source: ``qa``, ``ict`` or ``llm``.
    """

    query: str
    evidence: tuple[tuple[str, int, int], ...]
    source: str = "qa"

    @property
    def doc_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d for d, _, _ in self.evidence))


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise InputError(f"'{path}' does not exist; a training set needs docs.jsonl (and qa.jsonl for questions)")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{number}: not a JSON object")
            yield number, record


def load_documents_dir(directory: str | Path) -> dict[str, str]:
    """``doc_id -> text`` from ``docs.jsonl``, or from the ``.txt``/``.md`` files of a folder."""
    root = Path(directory)
    if (root / "docs.jsonl").is_file():
        docs: dict[str, str] = {}
        for number, r in _read_jsonl(root / "docs.jsonl"):
            if not isinstance(r.get("doc_id"), str) or not isinstance(r.get("text"), str):
                raise InputError(f"{root / 'docs.jsonl'}:{number}: needs string fields doc_id and text")
            docs[r["doc_id"]] = r["text"]
        return docs
    if root.is_file():
        return {root.name: root.read_text(encoding="utf-8", errors="replace")}
    if not root.is_dir():
        raise InputError(f"'{root}' is neither a folder nor a file of documents")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".txt", ".md") and p.is_file())
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8", errors="replace") for p in files}


def load_qa(
    directory: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    skip_unlabelled: bool = False,
) -> tuple[dict[str, str], list[Example]]:
    """Documents and questions of a ``docs.jsonl`` + ``qa.jsonl`` folder.

    Gold is ``evidence_offsets`` (else ``answer_offsets``) in the question's
    document, or whole gold documents (``evidence_doc_ids``, as hotpotqa).

    Args:
        directory: the dataset folder.
        tasks: keep only records whose ``task`` is one of these.
        skip_unlabelled: skip questions without gold instead of failing
            (e.g. the L-Eval tasks that have none).

    Raises:
        InputError: a missing file, a line that is not JSON, a question without
            gold (unless skipped), or a range outside its document.
    """
    root = Path(directory)
    docs = load_documents_dir(root)
    examples: list[Example] = []
    qa_path = root / "qa.jsonl"
    for number, r in _read_jsonl(qa_path):
        if tasks is not None and r.get("task") not in tasks:
            continue
        where = f"{qa_path}:{number}"
        question = r.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{where}: the question is missing or empty")
        doc_id = str(r.get("doc_id", ""))
        ranges = r.get("evidence_offsets") or r.get("answer_offsets") or []
        evidence: list[tuple[str, int, int]] = []
        if ranges:
            if doc_id not in docs:
                raise InputError(f"{where}: question points at unknown document {doc_id!r}")
            size = len(docs[doc_id])
            for pair in ranges:
                start, end = int(pair[0]), int(pair[1])
                if not 0 <= start < end <= size:
                    raise InputError(f"{where}: evidence offset ({start}, {end}) is outside document {doc_id!r} "
                                     f"of {size} chars")
                evidence.append((doc_id, start, end))
        else:
            for gold in r.get("evidence_doc_ids") or []:
                if gold not in docs:
                    raise InputError(f"{where}: gold document {gold!r} is not in docs.jsonl")
                evidence.append((gold, 0, len(docs[gold])))
        if not evidence:
            if skip_unlabelled:
                continue
            raise InputError(f"{where}: question {r.get('id', '?')!r} has no evidence (evidence_offsets, "
                             "answer_offsets or evidence_doc_ids); label it or pass --skip-unlabelled")
        examples.append(Example(question.strip(), tuple(evidence), "qa"))
    return docs, examples


def split_documents(
    doc_ids: Sequence[str],
    val_fraction: float,
    seed: int,
    *,
    groups: Iterable[Sequence[str]] = (),
) -> tuple[list[str], list[str]]:
    """A seeded document-disjoint split: ``(train, validation)`` doc ids.

    Documents one example needs together (``groups``: e.g. a hotpotqa
    question's two gold paragraphs) land on the same side, so no question is
    lost to the split and none straddles it.

    Raises:
        InputError: either side would be empty.
    """
    ids = sorted(set(doc_ids))
    parent = {d: d for d in ids}

    def find(d: str) -> str:
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    for group in groups:
        members = [d for d in group if d in parent]
        for other in members[1:]:
            parent[find(other)] = find(members[0])
    components: dict[str, list[str]] = {}
    for d in ids:
        components.setdefault(find(d), []).append(d)
    units = sorted(components.values())
    random.Random(seed).shuffle(units)
    want = int(round(len(ids) * val_fraction)) if val_fraction > 0 else 0
    val: list[str] = []
    for unit in units:
        if len(val) >= max(want, 1) or val_fraction <= 0:
            break
        val.extend(unit)
    held = set(val)
    train = [d for d in ids if d not in held]
    if not train:
        raise InputError(f"the training split is empty: {len(ids)} document(s), validation takes {len(val)}; "
                         "give more documents or a smaller --val-fraction")
    if val_fraction > 0 and not val:
        raise InputError("the validation split is empty; give more documents or a larger --val-fraction")
    return train, sorted(val)


def split_long(docs: Mapping[str, str], max_chars: int) -> dict[str, str]:
    """Cut documents longer than ``max_chars`` into parts at paragraph breaks (``id#k``).

    Why: one long book is one document, and a document-disjoint split of one
    document leaves nothing to validate on; its chapters are documents enough.
    """
    out: dict[str, str] = {}
    for doc_id, text in docs.items():
        if len(text) <= max_chars:
            out[doc_id] = text
            continue
        part, k = [], 0
        size = 0
        for para in re.split(r"(?<=\n\n)", text):  # paragraphs keep their blank line
            if size + len(para) > max_chars and part:
                out[f"{doc_id}#{k}"] = "".join(part).strip()
                part, size, k = [], 0, k + 1
            part.append(para)
            size += len(para)
        if "".join(part).strip():
            out[f"{doc_id}#{k}"] = "".join(part).strip()
    return out


def inverse_cloze(
    docs: Mapping[str, str],
    sentences: Mapping[str, Sequence[tuple[int, int]]],
    *,
    per_doc: int,
    seed: int,
    max_run: int = 3,
    min_words: int = 6,
) -> list[Example]:
    """Pseudo-queries drawn from runs of consecutive sentences.

    For each pair, a run of 1..``max_run`` sentences is chosen; the query
    keeps about half of the run's longer words, in order (a keyword query
    that points at the whole run, not at one sentence's exact wording). The
    run is the evidence, so the position-aware target favours its last
    landmark, as for a real question. Runs with fewer than ``min_words``
    words are skipped.
    """
    rng = random.Random(seed)
    out: list[Example] = []
    for doc_id in sorted(docs):
        spans = list(sentences.get(doc_id, ()))
        if not spans:
            continue
        text = docs[doc_id]
        wanted = min(per_doc, len(spans))
        tries = 0
        made = 0
        while made < wanted and tries < wanted * 4:
            tries += 1
            length = rng.randint(1, min(max_run, len(spans)))
            first = rng.randrange(0, len(spans) - length + 1)
            start, end = spans[first][0], spans[first + length - 1][1]
            words = [w for w in _WORD.findall(text[start:end]) if len(w) > 3]
            if len(words) < min_words:
                continue
            keep = [w for w in words if rng.random() < 0.5] or words[: min_words]
            out.append(Example(" ".join(keep[:24]), ((doc_id, int(start), int(end)),), "ict"))
            made += 1
    return out


_PROMPT = ("Write one short question that the passage below answers. Reply with the question only.\n\n"
           "Passage:\n{passage}")


def synthetic_questions(
    docs: Mapping[str, str],
    sentences: Mapping[str, Sequence[tuple[int, int]]],
    generate: Callable[[str], str],
    model_name: str,
    cache_file: str | Path,
    *,
    per_doc: int,
    seed: int,
    max_run: int = 3,
) -> list[Example]:
    """Questions an LLM writes for runs of sentences, cached in ``cache_file`` (JSON lines).

    Args:
        generate: ``prompt -> reply`` (one user message to any hybridctx LLM).
        model_name: part of the cache key, so another model asks again.
        cache_file: where questions are kept; a rerun reads them back.
    """
    rng = random.Random(seed)
    path = Path(cache_file)
    cache: dict[str, str] = {}
    if path.is_file():
        for _, record in _read_jsonl(path):
            cache[str(record.get("key"))] = str(record.get("question", ""))
    out: list[Example] = []
    new: list[dict[str, str]] = []
    for doc_id in sorted(docs):
        spans = list(sentences.get(doc_id, ()))
        for _ in range(min(per_doc, len(spans))):
            length = rng.randint(1, min(max_run, len(spans)))
            first = rng.randrange(0, len(spans) - length + 1)
            start, end = int(spans[first][0]), int(spans[first + length - 1][1])
            passage = docs[doc_id][start:end]
            key = hashlib.sha256(f"{model_name}\0{passage}".encode()).hexdigest()
            if key not in cache:
                reply = generate(_PROMPT.format(passage=passage)).strip().splitlines()
                cache[key] = reply[0].strip() if reply else ""
                new.append({"key": key, "question": cache[key]})
            if cache[key]:
                out.append(Example(cache[key], ((doc_id, start, end),), "llm"))
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            for record in new:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out
