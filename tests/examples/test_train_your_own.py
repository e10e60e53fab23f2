"""examples/train_your_own.py runs end to end on a tiny setting and reports recall before and after."""

from __future__ import annotations

import json
import re

import pytest
from test_examples_run import run_example

pytestmark = pytest.mark.heavy


def test_train_your_own_reports_held_out_recall_before_and_after(tmp_path) -> None:
    out = tmp_path / "model"
    text = run_example("train_your_own.py", "--out", str(out), "--steps", "2", "--epochs", "1", "--window", "64",
                       "--max-chars", "16000", "--part-chars", "4000", "--budget", "128")
    before = re.search(r"before: dense ([\d.]+), hybrid ([\d.]+)", text)
    after = re.search(r"after:  dense ([\d.]+), hybrid ([\d.]+)", text)
    assert before and after, text
    assert all(0.0 <= float(v) <= 1.0 for v in before.groups() + after.groups())
    card = json.loads((out / "hybridctx_training.json").read_text())
    assert card["window"] == 64 and card["history"][0]["epoch"] == 0
    assert (out / "model.safetensors").is_file()
