"""The offline examples run to completion and report what they claim.

Each runs in a subprocess exactly as a user would start it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, timeout: int = 600) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=timeout, env=env,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_quickstart_packs_within_budget_and_routes() -> None:
    out = run_example("quickstart.py", "--budget", "300")
    used, budget = map(int, re.search(r"packed (\d+)/(\d+) cl100k_base tokens", out).groups())
    assert budget == 300 and 0 < used <= 300
    assert "route for kimi: retrieval" in out
    # The bundled book does not fit SmolLM2's 8k window: the router must say so.
    assert re.search(r"route for smollm2-135m-cpu: retrieval - full context \([\d,]+ tokens\) exceeds the 8,192", out)


def test_chinese_novel_finds_most_evidence_lexically() -> None:
    out = run_example("chinese_novel.py", "--budget", "800")
    found = int(re.search(r"Evidence inside the packed context for (\d+)/4 questions", out).group(1))
    assert found >= 3, out
    assert "exceeds the 131,072-token window of kimi" in out


def test_niah_heatmap_example_writes_its_heatmap(tmp_path) -> None:
    import json

    out = run_example("niah_heatmap.py", "--out", str(tmp_path / "niah"))
    assert (tmp_path / "niah" / "heatmap.png").stat().st_size > 10_000
    results = json.loads((tmp_path / "niah" / "results.json").read_text(encoding="utf-8"))
    assert "hybridctx" in out and "truncation" in out
    assert len(results["trials"]) == 6  # 2 lengths x 3 depths
    assert results["summary"]["hybridctx"]["pass_rate"] == 1.0
    assert results["summary"]["truncation"]["pass_rate"] < 1.0  # a needle at 100% depth is past the first 256 tokens
