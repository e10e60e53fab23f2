"""An opened index answers from any thread (web servers and LangChain use thread pools)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hybridctx import HybridContext
from hybridctx.indexers import LandmarkStore

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What did the Dormouse say the three sisters lived on?",
    "Who is the Hatter?",
    "What was written on the little bottle?",
    "Why did the Queen want to cut off the Cheshire Cat's head?",
]


def test_retrieval_from_worker_threads_matches_the_opening_thread(tmp_path: Path, encoder, alice_text: str) -> None:
    book = tmp_path / "alice.txt"
    book.write_text(alice_text[:60_000], encoding="utf-8")
    HybridContext.build([book], tmp_path / "a.idx", encoder=encoder, show_progress=False)
    hc = HybridContext(LandmarkStore.load(tmp_path / "a.idx"), encoder, path=str(tmp_path / "a.idx"))
    expected = [hc.retrieve(q, budget=400).to_json()["spans"] for q in QUESTIONS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda q: hc.retrieve(q, budget=400).to_json()["spans"], QUESTIONS * 3))
    assert got == expected * 3
