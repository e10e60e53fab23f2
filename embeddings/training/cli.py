"""``hybridctx train``: arguments and the run, kept beside the trainer.

Why here and not in hybridctx/cli.py: the verb has many options that only
training needs; the main CLI only registers them. Standard library at import,
so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run"]


def _budgets(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers, e.g. 1024,2048") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give positive token budgets, e.g. 1024")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write (and its checkpoint/)")
    p.add_argument("--qa", action="append", default=[], metavar="DIR",
                   help="labelled data: a folder with docs.jsonl + qa.jsonl (evidence_offsets, answer_offsets "
                        "or evidence_doc_ids); repeatable")
    p.add_argument("--task", action="append", default=None, metavar="NAME",
                   help="keep only questions of this task (the qa.jsonl 'task' field); repeatable")
    p.add_argument("--skip-unlabelled", action="store_true", help="skip questions without evidence instead of failing")
    p.add_argument("--docs", action="append", default=[], metavar="PATH",
                   help="unlabelled documents (docs.jsonl folder, .txt/.md files or folders) for self-supervised "
                        "inverse-cloze pairs; repeatable")
    p.add_argument("--ict-per-doc", type=int, default=32, metavar="N",
                   help="self-supervised pairs per --docs document (part) (default 32)")
    p.add_argument("--split-long", type=int, default=20000, metavar="CHARS",
                   help="cut --docs documents longer than this into parts at paragraph breaks (default 20000)")
    p.add_argument("--llm", default=None, metavar="local|URL",
                   help="also ask this LLM for questions about --docs passages (cached in --out/llm_questions.jsonl)")
    p.add_argument("--llm-model", default=None, metavar="NAME", help="model name at --llm")
    p.add_argument("--llm-per-doc", type=int, default=8, metavar="N", help="LLM questions per document (default 8)")
    p.add_argument("--base", default="all-MiniLM-L6-v2", metavar="NAME_OR_PATH",
                   help="model to fine-tune (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--window", type=int, default=None, metavar="N",
                   help="window trained on and served (tokens; default the base model's)")
    p.add_argument("--overlap", type=int, default=None, metavar="N", help="window overlap (default the encoder's)")
    p.add_argument("--pooling", default="mean", choices=["mean", "landmark"],
                   help="mean of a sentence's in-window tokens (encoders) or an inserted landmark token (decoders)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="position-aware target w_i ~ exp(alpha*i) over a gold run; 0 = plain (default 0.5)")
    p.add_argument("--temperature", type=float, default=0.05, help="InfoNCE temperature (default 0.05)")
    p.add_argument("--lr", type=float, default=3e-5, help="learning rate (default 3e-5)")
    p.add_argument("--batch", type=int, default=8, metavar="N", help="queries per step (default 8)")
    p.add_argument("--max-windows", type=int, default=12, metavar="N", help="most windows per step (default 12)")
    p.add_argument("--epochs", type=int, default=3, metavar="N", help="most epochs (default 3)")
    p.add_argument("--steps-per-epoch", type=int, default=None, metavar="N",
                   help="steps between validations (default one pass over the examples)")
    p.add_argument("--labelled-share", type=float, default=None, metavar="S",
                   help="share of each batch drawn from labelled questions when --docs pairs are also given "
                        "(default: all examples alike)")
    p.add_argument("--freeze-layers", type=int, default=0, metavar="N", help="lower layers kept frozen (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="documents held out for validation (default 0.2)")
    p.add_argument("--val-budgets", type=_budgets, default=(1024,), metavar="N,N",
                   help="token budgets of validation recall (default 1024)")
    p.add_argument("--patience", type=int, default=2, metavar="N", help="epochs without improvement before stopping")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the sampling and torch (default 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where training runs")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint with the same settings")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--interpolate-from", default=None, metavar="DIR",
                   help="train nothing: write into --out a model moved --interpolate of the way from its base "
                        "towards the trained model in DIR (WiSE-FT weight averaging)")
    p.add_argument("--interpolate", type=float, default=None, metavar="W",
                   help="with --interpolate-from: base + W * (trained - base), W in [0, 1]")


def run(args: argparse.Namespace) -> int:
    from hybridctx.embeddings.training.data import (
        inverse_cloze,
        load_documents_dir,
        load_qa,
        split_documents,
        split_long,
        synthetic_questions,
    )
    from hybridctx.embeddings.training.trainer import TrainConfig, Trainer, eval_set_for
    from hybridctx.errors import InputError
    from hybridctx.ingest.segmentation import split_sentences

    if args.interpolate_from is not None or args.interpolate is not None:
        return _interpolate(args)
    if not args.qa and not args.docs:
        raise InputError("give labelled data (--qa DIR) or documents (--docs PATH) to train on")
    if not 0 < args.val_fraction < 1:
        raise InputError(f"--val-fraction {args.val_fraction} must be between 0 and 1")
    config = TrainConfig(
        base=args.base, window=args.window, overlap=args.overlap, pooling=args.pooling, alpha=args.alpha,
        temperature=args.temperature, lr=args.lr, batch_queries=args.batch, max_windows=args.max_windows,
        epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, freeze_layers=args.freeze_layers,
        labelled_share=args.labelled_share,
        val_budgets=tuple(args.val_budgets), patience=args.patience, seed=args.seed, device=args.device,
    )
    train_docs: dict[str, str] = {}
    examples: list[Any] = []
    val_sets: dict[str, Any] = {}
    data_notes: list[dict[str, Any]] = []
    for folder in args.qa:
        docs, qa = load_qa(folder, tasks=args.task, skip_unlabelled=args.skip_unlabelled)
        name = Path(folder).name
        if not qa:
            raise InputError(f"'{folder}' has no questions to train on" + (f" for tasks {args.task}" if args.task else ""))
        used = {d for e in qa for d in e.doc_ids}
        tr, va = split_documents(sorted(used | set(docs)), args.val_fraction, args.seed, groups=[e.doc_ids for e in qa])
        held = set(va)
        tr_ex = [e for e in qa if not held & set(e.doc_ids)]
        va_ex = [e for e in qa if set(e.doc_ids) <= held]
        if not tr_ex or not va_ex:
            raise InputError(f"'{folder}': the split left {len(tr_ex)} training and {len(va_ex)} validation "
                             "questions; give more labelled documents or change --val-fraction")
        train_docs.update({d: docs[d] for d in tr})
        examples += tr_ex
        val_sets[name] = eval_set_for(name, {d: docs[d] for d in va}, va_ex)
        data_notes.append({"source": str(folder), "kind": "questions", "examples": len(tr_ex),
                           "validation_questions": len(va_ex), "licence": _licence(Path(folder))})
    if args.docs:
        raw: dict[str, str] = {}
        for path in args.docs:
            raw.update({f"{Path(path).name}/{k}": v for k, v in load_documents_dir(path).items()})
        docs = split_long(raw, args.split_long)
        tr, va = split_documents(list(docs), args.val_fraction, args.seed)
        sents = {d: split_sentences(t) for d, t in docs.items()}
        tr_docs = {d: docs[d] for d in tr}
        ict = inverse_cloze(tr_docs, sents, per_doc=args.ict_per_doc, seed=args.seed)
        va_ict = inverse_cloze({d: docs[d] for d in va}, sents, per_doc=max(4, args.ict_per_doc // 4),
                               seed=args.seed + 1)
        train_docs.update(tr_docs)
        examples += ict
        val_sets["docs"] = eval_set_for("docs", {d: docs[d] for d in va}, va_ict)
        data_notes.append({"source": ", ".join(args.docs), "kind": "self-supervised inverse cloze",
                           "examples": len(ict), "validation_questions": len(va_ict), "licence": "the documents' own"})
        if args.llm:
            from hybridctx.llms import load_llm

            llm = load_llm(args.llm, model=args.llm_model)

            def ask(prompt: str) -> str:
                return llm.generate([{"role": "user", "content": prompt}], max_tokens=64).text

            made = synthetic_questions(tr_docs, sents, ask, str(getattr(llm, "name", args.llm)),
                                       Path(args.out) / "llm_questions.jsonl", per_doc=args.llm_per_doc,
                                       seed=args.seed)
            examples += made
            data_notes.append({"source": f"LLM {getattr(llm, 'name', args.llm)} on --docs", "kind": "synthetic questions",
                               "examples": len(made), "licence": "the documents' own"})
    command = "hybridctx train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else None
    trainer = Trainer(config, train_docs, examples, val_sets, args.out,
                      card_info={"data": data_notes, "command": command},
                      show_progress=False if args.no_progress else None)
    result = trainer.train(resume=args.resume)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        first, best = result.history[0], result.history[result.best_epoch]
        print(f"trained {result.steps} steps in {result.seconds:.0f} s ({result.tokens_per_second:.0f} tokens/s); "
              f"kept epoch {result.best_epoch} ({result.stopped}); validation dense {first.get('dense', 0):.3f} -> "
              f"{best.get('dense', 0):.3f}, hybrid {first.get('hybrid', 0):.3f} -> {best.get('hybrid', 0):.3f}; "
              f"model in {result.out_dir}")
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    from hybridctx.embeddings.training.merge import interpolate_with_base
    from hybridctx.errors import InputError

    if args.interpolate_from is None or args.interpolate is None:
        raise InputError("give both --interpolate-from DIR (a trained model) and --interpolate W (0 base .. 1 trained)")
    if args.qa or args.docs:
        raise InputError("--interpolate-from trains nothing: drop --qa/--docs, or train first and interpolate after")
    out = interpolate_with_base(args.interpolate_from, args.interpolate, args.out, base=None)
    if args.json:
        print(json.dumps({"out_dir": str(out), "weight": args.interpolate, "trained": args.interpolate_from}))
    else:
        print(f"wrote base + {args.interpolate} * (trained - base) to {out}")
    return 0


def _licence(folder: Path) -> str:
    for where in (folder / "MANIFEST.json", folder.parent / "MANIFEST.json"):
        if where.is_file():
            try:
                manifest = json.loads(where.read_text(encoding="utf-8"))
                value = manifest.get("licence") or manifest.get("license")
            except (OSError, ValueError, AttributeError):
                continue
            if value:
                return str(value) if not isinstance(value, dict) else json.dumps(value)
    return "not stated (see the data's own terms)"
