"""The one place that picks a torch device: CUDA, then Apple MPS, then CPU.

Every device choice in the project goes through :func:`get_device`, so a user (or the grader's
``--device`` option) can override it in one place, with an argument or ``LLMGRADE_DEVICE``.
"""

from __future__ import annotations

import os

import torch

ENV_VAR = "LLMGRADE_DEVICE"


def get_device(override: str | torch.device | None = None) -> torch.device:
    """Return ``override`` if given, else ``$LLMGRADE_DEVICE``, else the best available device."""
    choice = override if override is not None else os.environ.get(ENV_VAR) or None
    if choice is not None:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {device} was asked for, but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {device} was asked for, but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
