"""Appendix E: Parameter-efficient fine-tuning with LoRA.

LoRA leaves a pretrained ``nn.Linear`` frozen and learns a low-rank update beside it:
``W x + (alpha / rank) * x A B`` with ``A`` of shape (in_dim, rank) and ``B`` of shape
(rank, out_dim). ``B`` starts at zero, so a freshly wrapped layer computes exactly what the
original layer did.

The printed book scales by ``alpha`` alone; the book's repository (and the LoRA paper) scale
by ``alpha / rank``, as here. The two agree only when ``rank == 1``.
"""

from __future__ import annotations

import math

import torch


class LoRALayer(torch.nn.Module):
    """The low-rank update ``(alpha / rank) * (x @ A @ B)``."""

    def __init__(self, in_dim: int, out_dim: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.A = torch.nn.Parameter(torch.empty(in_dim, rank))
        # the same initialisation nn.Linear gives its weight
        torch.nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        # zeros: the update is 0 until B is trained
        self.B = torch.nn.Parameter(torch.zeros(rank, out_dim))
        self.alpha = alpha
        self.rank = rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (..., in_dim) @ (in_dim, rank) @ (rank, out_dim) -> (..., out_dim)
        return (self.alpha / self.rank) * (x @ self.A @ self.B)


class LinearWithLoRA(torch.nn.Module):
    """An existing ``nn.Linear`` (``linear``) plus a ``LoRALayer`` (``lora``) of matching size."""

    def __init__(self, linear: torch.nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.linear = linear
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)
        # live where the wrapped layer lives, so a model can be adapted after .to(device)
        self.lora.to(device=linear.weight.device, dtype=linear.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.lora(x)


def replace_linear_with_lora(model: torch.nn.Module, rank: int, alpha: float) -> None:
    """Replace every ``nn.Linear`` inside ``model`` (at any depth) by ``LinearWithLoRA``, in place."""
    for name, module in model.named_children():
        if isinstance(module, torch.nn.Linear):
            setattr(model, name, LinearWithLoRA(module, rank, alpha))
        elif isinstance(module, LinearWithLoRA):
            continue  # already adapted: do not wrap its frozen layer a second time
        else:
            # recurse into containers (Sequential, blocks, ...) to reach nested layers
            replace_linear_with_lora(module, rank, alpha)
