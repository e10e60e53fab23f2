"""An index records the encoder backend that built it and reopens with that encoder.

A real plug-in is installed the way pip installs one (a ``*.dist-info`` with an
``entry_points.txt`` on ``sys.path``), an index is built with it, and a fresh
Python process reopens the index. A manifest names backends only: one that is
not registered here is refused, and nothing it names is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hybridctx.embeddings import registry
from hybridctx.errors import IndexCorruptError, IndexStoreError, MissingDependencyError
from hybridctx.facade import HybridContext

TEXT = ("The lighthouse keeper rang the brass bell at dusk. Ships in the harbour answered with horns. "
        "The cartographer drew the northern reef in red ink.\n\nA storm broke the pier in March. "
        "The baker on Quay Street sold rye bread to the sailors. The reef map hung in the tavern.")
QUESTION = "Who drew the reef map?"

# A complete encoder plug-in: hashed bag-of-words vectors (blake2b, so equal in every process),
# with settings of its own type, which a salt and a size change.
PLUGIN = '''
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

import numpy as np

WORD = re.compile(r"\\w+")


@dataclass(frozen=True)
class HashedConfig:
    dim: int = 64
    salt: str = ""
    device: str = "auto"

    @classmethod
    def from_mapping(cls, values):
        return cls(**values)

    def to_dict(self):
        return asdict(self)


class HashedWordEncoder:
    config_type = HashedConfig

    def __init__(self, config: HashedConfig) -> None:
        self.config = config

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def identity(self):
        return {"name": "hashed-words", "dim": self.dim, "pooling": "hash", "salt": self.config.salt}

    def token_offsets(self, text):
        spans = [m.span() for m in WORD.finditer(text)]
        return np.asarray(spans, dtype=np.int64).reshape(-1, 2), np.zeros(len(spans), dtype=np.int64)

    def _vector(self, text):
        out = np.zeros(self.dim, dtype=np.float32)
        for word in WORD.findall(text.lower()):
            digest = hashlib.blake2b((self.config.salt + word).encode(), digest_size=8).digest()
            out[int.from_bytes(digest, "little") % self.dim] += 1.0
        norm = float(np.linalg.norm(out))
        return out / norm if norm else out

    def encode_documents(self, documents, *, show_progress=None):
        return [np.stack([self._vector(text[a:b]) for a, b in sentences]).astype(np.float32)
                if len(sentences) else np.zeros((0, self.dim), np.float32) for text, sentences in documents]

    def encode_queries(self, queries):
        return np.stack([self._vector(q) for q in queries]).astype(np.float32)
'''


@pytest.fixture()
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path holding the plug-in and its dist-info, as pip would leave them;
    the registry sees it for this test only."""
    site = tmp_path / "site"
    (site / "hashed_words-0.1.dist-info").mkdir(parents=True)
    (site / "hashed_words.py").write_text(PLUGIN, encoding="utf-8")
    (site / "hashed_words-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hashed-words\nVersion: 0.1\n", encoding="utf-8")
    (site / "hashed_words-0.1.dist-info" / "entry_points.txt").write_text(
        "[hybridctx.encoders]\nhashed = hashed_words:HashedWordEncoder\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    monkeypatch.setattr(registry, "_CONFIGS", dict(registry._CONFIGS))
    return site


def _spans(packed) -> list[list]:
    return [[s.doc_id, s.start, s.end] for s in packed.spans]


def _manifest(index: Path) -> dict:
    return json.loads((index / "manifest.json").read_text(encoding="utf-8"))


def _rewrite_manifest(index: Path, manifest: dict) -> None:
    """Write an edited manifest with a matching digest (as the version that wrote it would have)."""
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (index / "manifest.json").write_text(text, encoding="utf-8")
    (index / "manifest.sha256").write_text(f"{hashlib.sha256(text.encode()).hexdigest()}  manifest.json\n")


def _doc(tmp_path: Path) -> Path:
    src = tmp_path / "harbour.txt"
    src.write_text(TEXT, encoding="utf-8")
    return src


@pytest.mark.slow
def test_a_plugin_index_reopens_with_the_plugin_in_a_fresh_process(tmp_path, plugin_site) -> None:
    encoder = registry.load_encoder({"dim": 48, "salt": "tide", "device": "cpu"}, backend="hashed")
    index = tmp_path / "idx"
    HybridContext.build([_doc(tmp_path)], index, encoder=encoder, show_progress=False)
    recorded = _manifest(index)["encoder"]
    assert recorded["backend"] == "hashed"
    assert recorded["settings"] == {"dim": 48, "salt": "tide"}  # device is the opener's, not recorded
    with HybridContext.open(index, device="cpu") as hc:
        here = _spans(hc.retrieve(QUESTION, budget=40))
    assert here and any("reef" in TEXT[a:b] for _, a, b in here)

    code = textwrap.dedent(f"""
        import json
        from hybridctx import HybridContext
        with HybridContext.open({str(index)!r}, device="cpu") as hc:
            enc = hc.encoder
            print(json.dumps({{"cls": type(enc).__module__ + "." + type(enc).__name__,
                              "config": enc.config.to_dict(),
                              "spans": [[s.doc_id, s.start, s.end] for s in hc.retrieve({QUESTION!r}, budget=40).spans]}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert there["cls"] == "hashed_words.HashedWordEncoder"
    assert there["config"] == {"dim": 48, "salt": "tide", "device": "cpu"}
    assert there["spans"] == here


@pytest.mark.slow
def test_without_the_plugin_installed_the_index_is_refused_in_one_line(tmp_path, plugin_site) -> None:
    encoder = registry.load_encoder({"dim": 32}, backend="hashed")
    index = tmp_path / "idx"
    HybridContext.build([_doc(tmp_path)], index, encoder=encoder, show_progress=False)
    command = [sys.executable, "-m", "hybridctx.cli", "retrieve", QUESTION, "--budget", "40", "--index", str(index)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)  # no plug-in on its path
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert "encoder backend 'hashed', which is not installed here" in line and "hybridctx.encoders" in line


def test_a_manifest_cannot_make_opening_import_a_module(tmp_path, plugin_site, monkeypatch) -> None:
    # A module that would leave a mark if anything imported it.
    mark = tmp_path / "imported"
    (plugin_site / "planted.py").write_text(f"open({str(mark)!r}, 'w').close()\n", encoding="utf-8")
    encoder = registry.load_encoder({"dim": 32}, backend="hashed")
    index = tmp_path / "idx"
    HybridContext.build([_doc(tmp_path)], index, encoder=encoder, show_progress=False)
    manifest = _manifest(index)
    for named in ("planted", "planted:HashedWordEncoder", "hashed_words:HashedWordEncoder", "os.path"):
        manifest["encoder"]["backend"] = named
        _rewrite_manifest(index, manifest)
        with pytest.raises(IndexStoreError, match="not installed here"):
            HybridContext.open(index, device="cpu")
    assert not mark.exists() and "planted" not in sys.modules


@pytest.mark.parametrize("settings, message", [
    ("dim=48", "settings of 'dim=48', which is not a dict"),
    ({"dim": 48, "module": "os"}, "encoder backend 'hashed' settings it refuses"),
])
def test_bad_recorded_settings_are_named(tmp_path, plugin_site, settings, message) -> None:
    index = tmp_path / "idx"
    HybridContext.build([_doc(tmp_path)], index, encoder=registry.load_encoder({}, backend="hashed"),
                        show_progress=False)
    manifest = _manifest(index)
    manifest["encoder"]["settings"] = settings
    _rewrite_manifest(index, manifest)
    with pytest.raises(IndexCorruptError, match=message):
        HybridContext.open(index, device="cpu")


@pytest.mark.slow
def test_a_windowed_index_records_its_backend_and_an_old_one_still_opens(tmp_path, encoder) -> None:
    index = tmp_path / "idx"
    HybridContext.build([_doc(tmp_path)], index, encoder=encoder, show_progress=False)
    recorded = _manifest(index)["encoder"]
    assert recorded["backend"] == "transformers" and recorded["settings"]["model"] == "all-MiniLM-L6-v2"
    assert "device" not in recorded["settings"]
    with HybridContext.open(index, device="cpu") as hc:
        new = _spans(hc.retrieve(QUESTION, budget=40))
        new_config = hc.encoder.config

    # What a version before the record wrote: the identity alone.
    manifest = _manifest(index)
    del manifest["encoder"]["backend"], manifest["encoder"]["settings"]
    _rewrite_manifest(index, manifest)
    with HybridContext.open(index, device="cpu") as hc:
        assert type(hc.encoder).__name__ == "WindowedLandmarkEncoder"
        assert hc.encoder.config == new_config
        assert _spans(hc.retrieve(QUESTION, budget=40)) == new

    # An index load_encoder(backend="flag") built is reopened by the flag backend, not taken for a
    # windowed one: here FlagEmbedding is not installed, and opening says so.
    manifest["encoder"].update(backend="flag", settings={"model": "all-MiniLM-L6-v2"})
    _rewrite_manifest(index, manifest)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "FlagEmbedding", None)  # as if not installed, wherever this runs
        with pytest.raises(MissingDependencyError, match=r"hybridctx\[flag\]"):
            HybridContext.open(index, device="cpu")
