"""benchmarks/query_latency.py runs end to end on a tiny corpus and reports what it measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "query_latency.py"


@pytest.mark.slow
def test_latency_benchmark_reports_every_method_and_the_ratio(tmp_path: Path, alice_text: str) -> None:
    chapters = [part for part in alice_text.split("CHAPTER ")[1:5] if part.strip()]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"doc_id": f"ch{i}", "text": t}) + "\n" for i, t in enumerate(chapters)),
                      encoding="utf-8")
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps({"question": q}) + "\n" for q in (
        "What did Alice drink?", "Who was late?", "What was written on the bottle?")), encoding="utf-8")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--corpus", str(corpus), "--min-tokens", "0", "--queries", "6", "--warmup", "1",
         "--budget", "300", "--index", str(tmp_path / "hx.idx"), "--out", str(out)],
        capture_output=True, text=True, timeout=900, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "latency.json").read_text(encoding="utf-8"))
    assert report["command"].startswith("python benchmarks/query_latency.py --corpus ") and report["commit"]
    assert report["queries"] == 6 and report["budget"] == 300 and report["documents"] == len(chapters)
    methods = report["timings_ms"]
    assert len(methods) == 3 and all(len(times) == 6 and min(times) > 0 for times in methods.values())
    ours, peer = next(iter(methods)), next(n for n in methods if n.startswith("LlamaIndex"))
    ratio = report["summary"][peer]["p50"] / report["summary"][ours]["p50"]
    assert report["speedup_p50"] == pytest.approx(ratio)
    assert {"encode_query", "dense_search", "lexical_search", "spans", "pack", "total"} <= set(report["stages_p50"])
    assert (out / "latency.png").stat().st_size > 10_000
    assert f"speed-up at p50: {ratio:.1f}x" in done.stdout
