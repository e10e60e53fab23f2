"""An fp32 ONNX export of the loaded encoder, made once and cached, for queries and documents.

Why: ONNX Runtime runs one short query several times faster than PyTorch on a
CPU. The packaged int8 export of the default model only approximates PyTorch's
vectors; an fp32 export of the very weights the documents were encoded with
agrees exactly, and on an AVX-only CPU it is no slower, since int8 kernels pay
off with AVX2/VNNI (measured: docs/benchmarks.md#query-latency,
``benchmarks/query_encoding.py``). Documents are encoded through
the same file on a CPU, in padded batches of windows, which is why only an exact
export may serve them. The export takes a few seconds once; the file is cached
under a fingerprint of the weights, written atomically, and checked against
PyTorch (one sequence alone and a padded batch) before it is used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["cache_root", "fp32_export"]

logger = logging.getLogger(__name__)

_PROBE = [101, 2073, 2106, 1996, 4937, 2360, 2000, 5650, 1029, 2054, 2055, 1996, 2681, 1012, 102]
_TOLERANCE = 1e-3  # largest |difference| of token states allowed between the export and PyTorch
# Changes the cache key when the way of exporting changes. v2: traced with eager attention, which
# ONNX Runtime fuses into one Attention node (the SDPA graph, with its NaN guards, is not fused).
_EXPORT_FORMAT = "v2-eager-attention"


def cache_root() -> Path:
    """Where hybridctx keeps files it derives (``$HYBRIDCTX_CACHE``, else the user cache)."""
    explicit = os.environ.get("HYBRIDCTX_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hybridctx"


def fp32_export(model: Any, name: str) -> Path | None:
    """The cached fp32 ONNX export of ``model`` (a transformers encoder returning
    ``last_hidden_state``), made now if missing; ``None`` when it cannot be made
    here (no ``onnx`` package, an export error, or a result that disagrees with
    PyTorch), in which case the caller keeps its other options."""
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        return None
    try:
        path = cache_root() / "onnx" / f"{_safe(name)}-{_fingerprint(model)}.onnx"
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.info("exporting %s to ONNX (once): %s", name, path)
        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
        os.close(fd)
        try:
            source = _on_cpu(model)
            _export(source, Path(tmp))
            _check(source, Path(tmp))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path
    except Exception as exc:  # any failure leaves the packaged export or PyTorch in charge
        logger.warning("could not export %s to ONNX (%s); queries and documents use another runtime", name, exc)
        return None


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[-60:]


def _fingerprint(model: Any) -> str:
    """A digest of the configuration and every weight (sum and shape per tensor)."""
    import torch

    digest = hashlib.sha256(model.config.to_json_string().encode("utf-8"))
    digest.update(torch.__version__.encode("ascii"))
    digest.update(_EXPORT_FORMAT.encode("ascii"))
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            values = tensor.detach().float()
            digest.update(f"{key}:{tuple(values.shape)}:{values.sum().item():.8e}:{values.abs().sum().item():.8e}"
                          .encode("utf-8"))
    return digest.hexdigest()[:20]


def _on_cpu(model: Any) -> Any:
    """``model`` itself when it is an fp32 model on the CPU, else an fp32 CPU copy:
    exporting moves a module in place, which must not pull a GPU model off its device."""
    import copy

    import torch

    first = next(model.parameters(), None)
    if first is None or (first.device.type == "cpu" and first.dtype == torch.float32):
        return model
    return copy.deepcopy(model).to("cpu", torch.float32).eval()


def _export(model: Any, path: Path) -> None:
    import torch

    class TokenStates(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    wrapped = TokenStates(model).eval().to("cpu")
    ids = torch.tensor([_PROBE], dtype=torch.long)
    dynamic = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
               "last_hidden_state": {0: "batch", 1: "tokens"}}
    with torch.no_grad(), warnings.catch_warnings(), _eager_attention(model):
        warnings.simplefilter("ignore")  # tracer notes about Python control flow in the model
        torch.onnx.export(wrapped, (ids, torch.ones_like(ids)), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], dynamic_axes=dynamic, opset_version=17, dynamo=False)


@contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """The model's plain (eager) attention while tracing, then its own again.

    Why: ONNX Runtime fuses the eager pattern (matmul, mask, softmax, matmul)
    into one Attention node; traced from PyTorch's SDPA the graph keeps a
    dozen small nodes per layer. Same arithmetic: the check below holds either.
    """
    setter = getattr(model, "set_attn_implementation", None)
    before = getattr(model.config, "_attn_implementation", None)
    switched = False
    if setter is not None and before not in (None, "eager"):
        try:
            setter("eager")
            switched = True
        except (ValueError, NotImplementedError, AttributeError):  # a model without the eager path
            pass
    try:
        yield
    finally:
        if switched:
            setter(before)


def _check(model: Any, path: Path) -> None:
    """Raises when the export's token states differ from PyTorch's: two probe
    lengths alone, then both in one right-padded batch (as documents are run)."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    short = _PROBE[:5] + [_PROBE[-1]]
    padded = np.zeros((2, len(_PROBE)), dtype=np.int64)
    padded[0], padded[1, : len(short)] = _PROBE, short
    mask = (np.arange(len(_PROBE))[None, :] < np.asarray([[len(_PROBE)], [len(short)]])).astype(np.int64)
    for ids, attention in ((padded[:1], mask[:1]), (padded[1:, : len(short)], mask[1:, : len(short)]), (padded, mask)):
        got = session.run(None, {"input_ids": ids, "attention_mask": attention})[0]
        with torch.no_grad():
            want = model(input_ids=torch.from_numpy(ids),
                         attention_mask=torch.from_numpy(attention)).last_hidden_state.float().numpy()
        real = attention.astype(bool)
        gap = float(np.abs(got[real] - want[real]).max())
        if gap > _TOLERANCE:
            raise ValueError(f"the export's token states differ from PyTorch's by {gap:.2g}")
