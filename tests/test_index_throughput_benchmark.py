"""benchmarks/index_throughput.py runs end to end on a tiny corpus and reports every method and both ratios."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "index_throughput.py"


@pytest.mark.slow
def test_index_throughput_reports_the_peer_the_forward_ceiling_and_the_ratios(tmp_path: Path, alice_text: str) -> None:
    corpus = tmp_path / "docs.jsonl"
    chapters = [alice_text[5000:11000], alice_text[11000:17000]]  # past the table of contents: prose
    corpus.write_text("".join(json.dumps({"doc_id": f"ch{i}", "text": t}) + "\n" for i, t in enumerate(chapters)),
                      encoding="utf-8")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--corpus", str(corpus), "--repeat", "2", "--overlap", "32", "--out", str(out)],
        capture_output=True, text=True, timeout=900, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "index_throughput.json").read_text(encoding="utf-8"))
    assert report["command"].startswith("python benchmarks/index_throughput.py --corpus ") and report["commit"]
    assert report["docs"] == len(chapters) and report["identity"]["overlap"] == 32
    assert set(report["seconds"]) == {"hybridctx", "llamaindex", "forward"}
    assert all(len(times) == 2 and min(times) > 0 for times in report["seconds"].values())
    assert report["tokens_read"] > report["tokens"]  # overlapping windows read some tokens twice
    assert report["peer"]["chunk_size"] == 256 and report["peer"]["chunk_overlap"] == 20
    best = {name: min(times) for name, times in report["seconds"].items()}
    ratio = re.search(r"ratio hybridctx / LlamaIndex: ([0-9.]+)x best-of \(rounds ([0-9.]+)-([0-9.]+)x", done.stdout)
    assert ratio, done.stdout
    assert float(ratio.group(1)) == pytest.approx(best["llamaindex"] / best["hybridctx"], abs=0.006)
    assert float(ratio.group(2)) <= float(ratio.group(3))
    share = re.search(r"hybridctx / encoder forward: (\d+)% best-of", done.stdout)
    assert share and abs(int(share.group(1)) - 100 * best["forward"] / best["hybridctx"]) <= 0.51
    assert "chunk_size=256, chunk_overlap=20" in done.stdout and "embed_batch_size=32" in done.stdout
