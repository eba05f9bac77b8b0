"""Appendix E: LoRA as plain functions (both scaling conventions and the usual slips), and the
small model that replace_linear_with_lora is tried on.

Errata (see BOOK_FACTS): the printed book scales the update by ``alpha``, the repository by
``alpha / rank``. With ``rank > 1`` and ``alpha`` not equal to 1 the two give clearly different
outputs, so a result is recognised as one convention or the other exactly, not by tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from grader.recipes.appendix_e import LINEAR_PATHS, TOP_LEVEL_LINEARS

SCALES: dict[str, Callable[[float, int], float]] = {
    "repository": lambda alpha, rank: alpha / rank, "printed": lambda alpha, rank: alpha,
    "none": lambda alpha, rank: 1.0}


def lora(A: torch.Tensor, B: torch.Tensor, x: torch.Tensor, alpha: float, rank: int,
         scale: str = "repository") -> torch.Tensor:
    factor = SCALES[scale](alpha, rank)
    out: torch.Tensor = factor * (x @ A @ B)
    return out


def linear_with_lora(sd: dict[str, torch.Tensor], x: torch.Tensor, alpha: float, rank: int, *,
                     scale: str = "repository", parts: str = "both", prefix: str = "") -> torch.Tensor:
    """``linear(x) + lora(x)`` from a LinearWithLoRA state_dict; ``parts`` "linear"/"lora" drop one."""
    out = x @ sd[f"{prefix}linear.weight"].T
    bias = sd.get(f"{prefix}linear.bias")
    if bias is not None:
        out = out + bias
    update = lora(sd[f"{prefix}lora.A"], sd[f"{prefix}lora.B"], x, alpha, rank, scale)
    return {"both": out + update, "linear": out, "lora": update}[parts]


def with_grads(fn: Any, sd: dict[str, torch.Tensor], x: torch.Tensor,
               grad_output: torch.Tensor) -> dict[str, Any]:
    """Output of ``fn(sd, x)`` and the gradients of every entry of ``sd`` and of ``x`` (float64)."""
    params = {k: v.detach().to(torch.float64).requires_grad_(True) for k, v in sd.items()}
    xx = x.detach().to(torch.float64).requires_grad_(True)
    out = fn(params, xx)
    (out * grad_output).sum().backward()
    return {"output": out.detach(), "param_grads": {k: p.grad for k, p in params.items()}, "input_grad": xx.grad}


def wrapped_mistake(wrapped: list[str]) -> str | None:
    """Name the slip behind a set of wrapped module paths (other than the right one)."""
    if sorted(wrapped) == sorted(TOP_LEVEL_LINEARS):
        return "appendix_e_replace_not_recursive"
    if any(p.endswith(".linear") for p in wrapped):
        return "appendix_e_replace_wraps_twice"
    if set(wrapped) > set(LINEAR_PATHS):
        return "appendix_e_replace_wraps_non_linear"
    return None
