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


class Duck(torch.nn.Module):
    """A projection that is not an nn.Linear, though it has in_features/out_features and a weight."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features) / in_features ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.weight.T)


class Block(torch.nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.attn = torch.nn.Linear(d, d, bias=False)
        self.ff = torch.nn.Sequential(torch.nn.Linear(d, 2 * d), torch.nn.GELU(), torch.nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm(x))
        return x + self.ff(x)  # type: ignore[no-any-return]


class TinyNet(torch.nn.Module):
    """Linear layers at the top level, inside blocks and inside Sequentials, next to modules that
    must stay as they are (LayerNorm, GELU, a Linear-like Duck, an Embedding)."""

    def __init__(self, d_in: int = 6, d: int = 8, n_out: int = 3) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(d_in, d)
        self.pos = torch.nn.Embedding(4, d)
        self.blocks = torch.nn.Sequential(Block(d), Block(d))
        self.duck = Duck(d, d)
        self.head = torch.nn.Linear(d, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x) + self.pos.weight[: x.shape[-2]]
        h = self.blocks(h)
        return self.head(self.duck(h))  # type: ignore[no-any-return]


LINEAR_PATHS = ["inp", "blocks.0.attn", "blocks.0.ff.0", "blocks.0.ff.2", "blocks.1.attn", "blocks.1.ff.0",
                "blocks.1.ff.2", "head"]
TOP_LEVEL_LINEARS = ["inp", "head"]


def wrapped_mistake(wrapped: list[str]) -> str | None:
    """Name the slip behind a set of wrapped module paths (other than the right one)."""
    if sorted(wrapped) == sorted(TOP_LEVEL_LINEARS):
        return "appendix_e_replace_not_recursive"
    if any(p.endswith(".linear") for p in wrapped):
        return "appendix_e_replace_wraps_twice"
    if set(wrapped) > set(LINEAR_PATHS):
        return "appendix_e_replace_wraps_non_linear"
    return None
