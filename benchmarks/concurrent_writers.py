"""Lost updates under concurrent writers: N trials of two ``hybridctx index`` runs at once.

Each trial copies a one-document index, starts two real CLI processes that each
add one new document to it at the same moment, and counts the documents the
final index holds. Before the writer lock covered load → save, 4 of 5 trials
lost one document while both runs printed ``indexed 1 new``.

    python benchmarks/concurrent_writers.py --trials 20 [--out DIR]

``--out DIR`` also writes ``DIR/concurrent_writers.json`` (every trial, the command, the commit).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import add_out_argument, write_result


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hybridctx.cli", *args]


def _doc(path: Path, doc_id: str) -> Path:
    path.write_text(json.dumps({"doc_id": doc_id, "text": f"{doc_id} is a document about {doc_id}s."}) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    add_out_argument(parser)
    args = parser.parse_args(argv)
    from hybridctx.indexers import LandmarkStore

    with tempfile.TemporaryDirectory(prefix="hybridctx-writers-") as tmp:
        root = Path(tmp)
        base = root / "base.idx"
        subprocess.run(_cli("index", str(_doc(root / "seed.jsonl", "seed")), "--index", str(base), "--no-progress"),
                       check=True, capture_output=True)
        lost = exit_codes_bad = 0
        trials = []
        for trial in range(args.trials):
            index = root / f"trial{trial}.idx"
            shutil.copytree(base, index)
            files = [_doc(root / f"{trial}-{n}.jsonl", f"t{trial}{n}") for n in "ab"]
            started = time.perf_counter()
            procs = [subprocess.Popen(_cli("index", str(f), "--index", str(index), "--no-progress"),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for f in files]
            codes = [p.wait() for p in procs]
            for p in procs:
                p.stdout.close()  # type: ignore[union-attr]
                p.stderr.close()  # type: ignore[union-attr]
            store = LandmarkStore.load(index)
            held = set(store.doc_ids())
            store.close()
            missing = {"seed", f"t{trial}a", f"t{trial}b"} - held
            lost += len(missing)
            exit_codes_bad += sum(c != 0 for c in codes)
            trials.append({"exit_codes": codes, "documents": len(held), "lost": sorted(missing),
                           "seconds": round(time.perf_counter() - started, 2)})
            print(f"trial {trial + 1}/{args.trials}: exit {codes}, {len(held)} documents, "
                  f"lost {sorted(missing) or 'none'} ({time.perf_counter() - started:.1f} s)", flush=True)
    print(f"{args.trials} trials: {lost} lost updates, {exit_codes_bad} failed runs")
    if args.out is not None:
        write_result(args.out, "concurrent_writers.json",
                     {"trials": trials, "lost_updates": lost, "failed_runs": exit_codes_bad}, argv)
    return 1 if lost or exit_codes_bad else 0


if __name__ == "__main__":
    sys.exit(main())
