"""Loading the retrieval-quality datasets of ``../shared/data`` into typed records.

Why: every method is scored on the same questions, and a question only counts
when its gold can be scored from character ranges (DESIGN.md, "How retrieval
quality is scored"). This module owns that choice: which file of a dataset is
read (the long haystacks for drcd and cmrc2018), which questions are scorable
and by which rule, how a reproducible sample is drawn, and whether retrieval
searches the question's own document or the whole corpus.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from hybridctx.errors import InputError
from hybridctx.config.settings import did_you_mean

__all__ = [
    "DATA_ENV",
    "HAYSTACK_SETS",
    "SIX_DATASETS",
    "EvalSet",
    "QAItem",
    "ScoreKind",
    "Scope",
    "default_data_root",
    "is_dataset_dir",
    "load_dataset",
    "load_datasets",
    "score_kind",
    "search_scope",
]

logger = logging.getLogger(__name__)

SIX_DATASETS = ("leval", "locomo", "hotpotqa", "drcd", "cmrc2018", "longbench_zh")
HAYSTACK_SETS = ("drcd", "cmrc2018")
_CORPUS_SETS = ("hotpotqa",)
DATA_ENV = "HYBRIDCTX_EVAL_DATA"

Scope = Literal["doc", "corpus"]
ScoreKind = Literal["evidence", "answer", "docs"]


@dataclass(frozen=True)
class QAItem:
    """One scorable question.

    Attributes:
        id: the question id of ``qa.jsonl``.
        doc_id: the document the question is about (for hotpotqa, its first
            gold paragraph).
        question: the question text, used as the retrieval query.
        evidence_offsets: gold evidence ``(start, end)`` char ranges in ``doc_id``.
        answer_offsets: gold answer positions ``(start, end)`` in ``doc_id``.
        evidence_doc_ids: gold paragraphs (documents) for multi-document sets.
        kind: which scoring rule applies (see :mod:`hybridctx.eval.scoring`).
        answers: the gold answers, for judging a model's answer.
        options: the options of a multiple-choice question (``"(A) ..."``).
        answer_label: the letter of the right option.
        unanswerable: the document does not answer it (a refusal is right).
    """

    id: str
    doc_id: str
    question: str
    evidence_offsets: tuple[tuple[int, int], ...] = ()
    answer_offsets: tuple[tuple[int, int], ...] = ()
    evidence_doc_ids: tuple[str, ...] = ()
    kind: ScoreKind = "evidence"
    answers: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    answer_label: str | None = None
    unanswerable: bool = False

    @property
    def has_context_gold(self) -> bool:
        """Whether the packed context can be scored (evidence, answer positions or gold documents)."""
        return bool(self.evidence_offsets or self.answer_offsets or self.evidence_doc_ids)

    @property
    def has_answer_gold(self) -> bool:
        """Whether a model's answer can be scored (answer text, options, or known unanswerable)."""
        return bool(self.answers or (self.options and self.answer_label) or self.unanswerable)


@dataclass(frozen=True)
class EvalSet:
    """A dataset ready for evaluation.

    Attributes:
        name: the dataset name (its directory name).
        docs: ``doc_id -> text``, in file order.
        questions: the scorable questions, in file order.
        scope: ``"doc"`` (search the question's own document) or ``"corpus"``.
        haystack: whether the haystack files were read.
    """

    name: str
    docs: Mapping[str, str] = field(repr=False)
    questions: tuple[QAItem, ...] = field(repr=False)
    scope: Scope = "doc"
    haystack: bool = False

    def doc_ids_for(self, item: QAItem) -> list[str] | None:
        """The documents to search for ``item``: its own, or ``None`` for the whole corpus."""
        return None if self.scope == "corpus" else [item.doc_id]

    def __repr__(self) -> str:  # the docs and questions are far too long to print
        return (
            f"EvalSet(name={self.name!r}, docs={len(self.docs)}, questions={len(self.questions)}, "
            f"scope={self.scope!r}, haystack={self.haystack})"
        )


def search_scope(name: str) -> Scope:
    """Where retrieval searches for a question of dataset ``name``.

    hotpotqa is an open paragraph corpus; every other set retrieves within the
    question's own document (DESIGN.md).
    """
    return "corpus" if name in _CORPUS_SETS else "doc"


def score_kind(name: str, record: Mapping[str, Any]) -> ScoreKind | None:
    """The scoring rule for one ``qa.jsonl`` record, or ``None`` if it cannot be scored.

    drcd and cmrc2018 are scored on the gold answer position (their evidence is
    only the sentence around it), hotpotqa on gold paragraphs, the rest on
    evidence ranges. Sets not named in DESIGN.md fall back on whichever gold the
    record carries: evidence ranges, then gold documents, then answer positions.
    """
    has_evidence = bool(record.get("evidence_offsets"))
    has_answer = bool(record.get("answer_offsets"))
    has_docs = bool(record.get("evidence_doc_ids"))
    if name in HAYSTACK_SETS:
        return "answer" if has_answer else None
    if name in _CORPUS_SETS:
        return "docs" if has_docs else None
    if has_evidence:
        return "evidence"
    if has_docs:
        return "docs"
    if has_answer:
        return "answer"
    return None


def load_dataset(
    directory: str | Path,
    *,
    haystack: bool | None = None,
    limit: int | None = None,
    seed: int = 0,
    answers: bool = False,
) -> EvalSet:
    """Read one dataset directory (``docs.jsonl`` + ``qa.jsonl``).

    Args:
        directory: a dataset directory in the ``../shared/data`` format; its
            name is the dataset name.
        haystack: read ``haystack_docs.jsonl``/``haystack_qa.jsonl`` instead;
            ``None`` reads them when they exist (drcd, cmrc2018).
        limit: keep at most this many questions, sampled reproducibly by
            ``seed`` and kept in file order.
        seed: the sampling seed.
        answers: keep the questions whose *answer* can be scored (gold
            answers, options, or unanswerable), context gold or not, as
            judging a model's answers needs; by default only those whose
            context can be scored.

    Returns:
        The scorable questions and the documents they need: only the documents
        the kept questions reference, except for a corpus-scope set (hotpotqa),
        which keeps the whole corpus.

    Raises:
        InputError: the directory lacks the files, a line is not JSON, or a
            question points at an unknown document or outside its text.
    """
    root = Path(directory)
    name = root.name
    hay_docs, hay_qa = root / "haystack_docs.jsonl", root / "haystack_qa.jsonl"
    if haystack is None:
        haystack = hay_docs.is_file() and hay_qa.is_file()
    docs_path, qa_path = (hay_docs, hay_qa) if haystack else (root / "docs.jsonl", root / "qa.jsonl")
    docs = {r["doc_id"]: r["text"] for r in _read_jsonl(docs_path)}
    scope = search_scope(name)

    questions: list[QAItem] = []
    skipped = 0
    for record in _read_jsonl(qa_path):
        kind = score_kind(name, record)
        if kind is None and not (answers and _answer_gold(record)):
            skipped += 1
            continue
        item = QAItem(
            id=str(record["id"]),
            doc_id=str(record["doc_id"]),
            question=str(record["question"]),
            evidence_offsets=_pairs(record.get("evidence_offsets")),
            answer_offsets=_pairs(record.get("answer_offsets")),
            evidence_doc_ids=tuple(str(d) for d in record.get("evidence_doc_ids") or ()),
            kind=kind or "evidence",
            answers=tuple(str(a) for a in record.get("answers") or ()),
            options=_options(record.get("options")),
            answer_label=str(record["answer_label"]) if record.get("answer_label") else None,
            unanswerable=bool(record.get("unanswerable")),
        )
        if answers and not item.has_answer_gold:
            skipped += 1
            continue
        _validate(item, docs, qa_path)
        questions.append(item)
    logger.info("%s: %d scorable questions, %d without gold skipped", name, len(questions), skipped)

    if limit is not None and limit < len(questions):
        keep = set(random.Random(seed).sample(range(len(questions)), limit))
        questions = [q for i, q in enumerate(questions) if i in keep]
    if scope == "doc":
        needed = {q.doc_id for q in questions} | {d for q in questions for d in q.evidence_doc_ids}
        docs = {d: t for d, t in docs.items() if d in needed}
    return EvalSet(name=name, docs=docs, questions=tuple(questions), scope=scope, haystack=haystack)


def default_data_root() -> Path:
    """``$HYBRIDCTX_EVAL_DATA``: the evaluation data when ``--data`` is not given.

    Raises:
        InputError: the variable is not set (there is no default place: the
            data is not installed with hybridctx).
    """
    value = os.environ.get(DATA_ENV, "").strip()
    if not value:
        raise InputError(f"no evaluation data given: pass --data DIR (a folder of datasets, or one folder with "
                         f"docs.jsonl and qa.jsonl) or set {DATA_ENV}")
    return Path(value)


def is_dataset_dir(path: str | Path) -> bool:
    """Whether ``path`` holds one dataset (``docs.jsonl`` and ``qa.jsonl``, or the haystack pair)."""
    root = Path(path)
    pairs = (("docs.jsonl", "qa.jsonl"), ("haystack_docs.jsonl", "haystack_qa.jsonl"))
    return any((root / d).is_file() and (root / q).is_file() for d, q in pairs)


def load_datasets(
    data: str | Path,
    names: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    answers: bool = False,
) -> dict[str, EvalSet]:
    """Read several datasets from a data root, or the one dataset a directory holds.

    Why both: the shared data is a root of named sets, while a user's own data
    is usually a single folder with ``docs.jsonl`` and ``qa.jsonl``.

    Args:
        data: a root of dataset directories, or one dataset directory.
        names: dataset directory names under ``data``; ``None`` means the six
            of DESIGN.md that are present (or, if none is, every dataset
            directory under ``data``). Must be ``None`` or the directory's own
            name when ``data`` is one dataset.
        limit: questions per dataset (see :func:`load_dataset`).
        seed: the sampling seed.
        answers: as for :func:`load_dataset`.

    Returns:
        ``name -> EvalSet`` in the order asked.

    Raises:
        InputError: ``data`` does not exist, a named dataset is not there (the
            message names the closest), or no dataset is found.
    """
    root = Path(data)
    if not root.is_dir():
        raise InputError(
            f"data directory '{root}' does not exist; pass a folder of datasets in the ../shared/data "
            f"format, or one dataset folder with docs.jsonl and qa.jsonl (or set {DATA_ENV})"
        )
    if is_dataset_dir(root):
        if names and list(names) != [root.name]:
            raise InputError(
                f"'{root}' is a single dataset ({root.name!r}), so it has no datasets {list(names)}; "
                "leave out the dataset names or point at the folder that holds them"
            )
        return {root.name: load_dataset(root, limit=limit, seed=seed, answers=answers)}
    available = sorted(p.name for p in root.iterdir() if p.is_dir() and is_dataset_dir(p))
    if names is None:
        names = [n for n in SIX_DATASETS if n in available] or available
        missing = [n for n in SIX_DATASETS if n not in available]
        if missing and len(missing) < len(SIX_DATASETS):  # a partial copy of the shared data
            logger.warning("datasets %s are not in '%s'; evaluating %s", missing, root, names)
    if not names:
        raise InputError(f"'{root}' holds no dataset directory (a folder with docs.jsonl and qa.jsonl)")
    for name in names:
        if name not in available:
            raise InputError(
                f"no dataset {name!r} in '{root}'{did_you_mean(name, available)}; "
                f"found: {', '.join(available) or 'none'}"
            )
    return {name: load_dataset(root / name, limit=limit, seed=seed, answers=answers) for name in names}


def _answer_gold(record: Mapping[str, Any]) -> bool:
    return bool(record.get("answers") or (record.get("options") and record.get("answer_label"))
                or record.get("unanswerable"))


def _options(value: Any) -> tuple[str, ...]:
    from hybridctx.eval.answer_scoring import parse_options

    return parse_options(value)


def _pairs(value: Any) -> tuple[tuple[int, int], ...]:
    return tuple((int(s), int(e)) for s, e in value or ())


def _validate(item: QAItem, docs: Mapping[str, str], path: Path) -> None:
    if item.doc_id not in docs:
        raise InputError(f"{path}: question {item.id!r} points at unknown document {item.doc_id!r}")
    size = len(docs[item.doc_id])
    for start, end in item.evidence_offsets + item.answer_offsets:
        if not 0 <= start <= end <= size:
            raise InputError(
                f"{path}: question {item.id!r} has range ({start}, {end}) outside "
                f"document {item.doc_id!r} of {size} chars"
            )
    for doc_id in item.evidence_doc_ids:
        if doc_id not in docs:
            raise InputError(f"{path}: question {item.id!r} names unknown gold document {doc_id!r}")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"'{path}' does not exist; a dataset directory needs docs.jsonl and qa.jsonl")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not a JSON object ({exc.msg})") from exc
    return records
