"""Document-disjoint training and evaluation folders for the encoder-training grid (docs/encoders.md).

Why: a trained encoder may only be scored on documents it never saw. This
script splits the openly licensed labelled sets (HotpotQA, CC BY-SA 4.0; the
CUAD ``legal_contract_qa`` part of L-Eval, CC BY 4.0) by document with a
fixed seed into ``OUT/train/<set>`` and ``OUT/eval/<set>``, and copies the sets
that are never trained on (L-Eval's topic-retrieval task, LoCoMo: evaluation
only) into ``OUT/eval``, each L-Eval task as its own set. Then it prints the
``hybridctx train`` and ``hybridctx eval qa`` commands of each row. Each folder's
``MANIFEST.json`` records its licence and the command line and commit that made it.

    python benchmarks/train_grid.py --out /tmp/grid [--data ../shared/data] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from _common import add_data_argument, add_out_argument, provenance


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


_LICENCES = {"hotpotqa": "CC BY-SA 4.0 (HotpotQA)", "leval_cuad": "CC BY 4.0 (CUAD, via L-Eval)",
             "leval_topic": "L-Eval topic retrieval (LongChat): evaluation only",
             "locomo": "none stated: evaluation only"}


def _write(folder: Path, docs: list[dict], qa: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"licence": _LICENCES.get(folder.name, "see the source"), "made_by": "benchmarks/train_grid.py",
                **provenance()}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest) + "\n", encoding="utf-8")
    for name, rows in (("docs.jsonl", docs), ("qa.jsonl", qa)):
        with (folder / name).open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _split(ids: list[str], share: float, seed: int) -> set[str]:
    ids = sorted(set(ids))
    random.Random(seed).shuffle(ids)
    return set(ids[: max(1, round(len(ids) * share))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(ap)
    add_out_argument(ap, required=True, help="the grid folder: train/, eval/ (and eval_small/) are made in it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-share", type=float, default=0.35, help="share of documents held out for evaluation")
    ap.add_argument("--small", action="store_true",
                    help="also write OUT/eval_small: at most 300 hotpotqa distractors, 10 topic and 2 LoCoMo "
                         "documents (what a shared 2-core CPU can encode twice in the time)")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)

    # HotpotQA: a question's gold paragraphs stay together; held-out questions are scored over the
    # held-out paragraphs only, so no training paragraph is in the evaluated corpus.
    docs = {d["doc_id"]: d for d in _read(data / "hotpotqa" / "docs.jsonl")}
    qa = _read(data / "hotpotqa" / "qa.jsonl")
    held_q = _split([q["id"] for q in qa], args.eval_share, args.seed)
    eval_q = [q for q in qa if q["id"] in held_q]
    train_gold = {d for q in qa if q["id"] not in held_q for d in q["evidence_doc_ids"]}
    eval_gold = {d for q in eval_q for d in q["evidence_doc_ids"]}
    clash = train_gold & eval_gold
    eval_q = [q for q in eval_q if not clash & set(q["evidence_doc_ids"])]
    train_q = [q for q in qa if q["id"] not in held_q]
    distractors = [d for d in docs if d not in train_gold and d not in eval_gold]
    held_distractors = _split(distractors, args.eval_share, args.seed)
    _write(out / "train" / "hotpotqa", [docs[d] for d in sorted(train_gold)], train_q)
    _write(out / "eval" / "hotpotqa", [docs[d] for d in sorted((eval_gold - clash) | held_distractors)], eval_q)

    # L-Eval: CUAD contracts split by document; the topic task is never trained on.
    ldocs = {d["doc_id"]: d for d in _read(data / "leval" / "docs.jsonl")}
    lqa = _read(data / "leval" / "qa.jsonl")
    cuad = [q for q in lqa if q.get("task") == "legal_contract_qa" and q.get("evidence_offsets")]
    held = _split([q["doc_id"] for q in cuad], args.eval_share, args.seed)
    for side, keep in (("train", lambda d: d not in held), ("eval", lambda d: d in held)):
        rows = [q for q in cuad if keep(q["doc_id"])]
        _write(out / side / "leval_cuad", [ldocs[d] for d in sorted({q["doc_id"] for q in rows})], rows)
    topic = [q for q in lqa if q.get("task") == "topic_retrieval_longchat" and q.get("evidence_offsets")]
    _write(out / "eval" / "leval_topic", [ldocs[d] for d in sorted({q["doc_id"] for q in topic})], topic)

    # LoCoMo: no licence stated, evaluation only.
    _write(out / "eval" / "locomo", _read(data / "locomo" / "docs.jsonl"), _read(data / "locomo" / "qa.jsonl"))

    if args.small:
        _shrink(out / "eval", out / "eval_small", args.seed)
    for side in ("train", "eval") + (("eval_small",) if args.small else ()):
        for folder in sorted((out / side).iterdir()):
            n_docs = sum(1 for _ in (folder / "docs.jsonl").open())
            n_q = sum(1 for _ in (folder / "qa.jsonl").open())
            print(f"{side}/{folder.name}: {n_docs} documents, {n_q} questions")
    print(f"""
# training (one row each; --alpha 0 is the plain target, --window 512 the longer window)
hybridctx train --qa {out}/train/hotpotqa --qa {out}/train/leval_cuad --docs hybridctx/samples/alice_in_wonderland.txt \\
  --out {out}/models/sup-a05-w256 --alpha 0.5 --window 256 --epochs 3 --steps-per-epoch 60 --batch 8 --max-windows 8
# evaluation (packaged MiniLM: drop --encoder)
hybridctx eval qa --data {out}/eval_small --datasets hotpotqa,leval_cuad,leval_topic,locomo --limit 40 \\
  --methods hybridctx-dense,hybridctx --encoder {out}/models/sup-a05-w256 --out {out}/results/sup-a05-w256""")


def _shrink(src: Path, dst: Path, seed: int) -> None:
    """The same held-out questions on fewer documents (seeded, document-disjoint as before)."""
    hp_docs, hp_qa = _read(src / "hotpotqa" / "docs.jsonl"), _read(src / "hotpotqa" / "qa.jsonl")
    gold = {d for q in hp_qa for d in q["evidence_doc_ids"]}
    others = [d["doc_id"] for d in hp_docs if d["doc_id"] not in gold]
    keep = gold | set(random.Random(seed).sample(others, min(300, len(others))))
    _write(dst / "hotpotqa", [d for d in hp_docs if d["doc_id"] in keep], hp_qa)
    _write(dst / "leval_cuad", _read(src / "leval_cuad" / "docs.jsonl"), _read(src / "leval_cuad" / "qa.jsonl"))
    for name, n in (("leval_topic", 10), ("locomo", 2)):
        docs, qa = _read(src / name / "docs.jsonl"), _read(src / name / "qa.jsonl")
        chosen = {d["doc_id"] for d in docs[:n]}
        _write(dst / name, [d for d in docs if d["doc_id"] in chosen], [q for q in qa if q["doc_id"] in chosen])


if __name__ == "__main__":
    main()
