"""Choosing where the encoder runs: CUDA (fp16) when present, else the CPU.

Why its own module: the choice is made at run time, logged with its reason, and
shared by every backend; nothing is decided at import.
"""

from __future__ import annotations

import logging
from typing import Literal

from hybridctx.errors import ConfigError

__all__ = ["DeviceName", "resolve_device"]

logger = logging.getLogger(__name__)

DeviceName = Literal["auto", "cpu", "cuda"]


def resolve_device(device: str = "auto", what: str = "encoder") -> str:
    """Return the torch device string to use (shared by encoders and local LLMs).

    Args:
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        what: what will run there, for the log line.

    Raises:
        ConfigError: ``cuda`` was asked for but no CUDA device is visible.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            logger.info("%s on cuda (%s): a CUDA device is available", what, torch.cuda.get_device_name(0))
            return "cuda"
        logger.info("%s on cpu: no CUDA device is visible", what)
        return "cpu"
    if device == "cpu":
        return "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{device}' was requested but no CUDA device is visible; use device 'cpu' or 'auto'")
        return device
    raise ConfigError(f"unknown device '{device}'; use auto, cpu, cuda or cuda:N")
