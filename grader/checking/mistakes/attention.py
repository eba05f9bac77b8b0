"""Chapter 3: multi-head attention as a plain function, with switches for the usual mistakes."""

from __future__ import annotations

from typing import Any

import torch


def _linear(sd: dict[str, torch.Tensor], prefix: str, x: torch.Tensor) -> torch.Tensor:
    out = x @ sd[f"{prefix}.weight"].to(x.dtype).T
    bias = sd.get(f"{prefix}.bias")
    return out + bias.to(x.dtype) if bias is not None else out


def mha(sd: dict[str, torch.Tensor], x: torch.Tensor, num_heads: int, *, scale: str = "head_dim",
        mask: str = "causal", softmax_dim: int = -1, merge: str = "transpose",
        out_proj: bool = True) -> torch.Tensor:
    """MultiHeadAttention forward (eval mode) with one deliberate slip selected by the switches."""
    b, t, _ = x.shape
    q, k, v = (_linear(sd, name, x) for name in ("W_query", "W_key", "W_value"))
    d_out = q.shape[-1]
    hd = d_out // num_heads
    q, k, v = (z.view(b, t, num_heads, hd).transpose(1, 2) for z in (q, k, v))  # (b, h, t, hd)
    scores = q @ k.transpose(2, 3)  # (b, h, t, t)
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    if mask == "causal":
        scores = scores.masked_fill(causal, float("-inf"))
    elif mask == "inverted":  # the past hidden, the future visible (tril instead of triu)
        scores = scores.masked_fill(torch.tril(torch.ones(t, t, dtype=torch.bool), diagonal=-1),
                                    float("-inf"))
    elif mask == "zero_before_softmax":
        scores = scores.masked_fill(causal, 0.0)
    divisor = {"head_dim": hd ** 0.5, "d_out": d_out ** 0.5, "none": 1.0, "no_sqrt": float(hd)}[scale]
    weights = torch.softmax(scores / divisor, dim=softmax_dim)
    if mask == "after_softmax":
        weights = weights.masked_fill(causal, 0.0)
    context = weights @ v  # (b, h, t, hd)
    if merge == "transpose":
        context = context.transpose(1, 2).contiguous().view(b, t, d_out)  # (b, t, h*hd)
    else:  # heads concatenated without moving the head axis next to the features first
        context = context.contiguous().view(b, t, d_out)
    return _linear(sd, "out_proj", context) if out_proj else context


def mha_mistakes(num_heads: int) -> Any:
    """A ``mistakes`` callable for :func:`grader.checking.checks.module_forward` on MultiHeadAttention."""
    variants: dict[str, dict[str, Any]] = {
        "attention_missing_scaling": {"scale": "none"},
        "attention_scaled_by_d_out": {"scale": "d_out"},
        "attention_scaled_without_sqrt": {"scale": "no_sqrt"},
        "mask_not_applied": {"mask": "none"},
        "mask_inverted": {"mask": "inverted"},
        "mask_filled_with_zero": {"mask": "zero_before_softmax"},
        "mask_after_softmax": {"mask": "after_softmax"},
        "softmax_wrong_dim": {"softmax_dim": -2},
        "heads_merged_wrong_order": {"merge": "view"},
        "missing_out_proj": {"out_proj": False},
    }

    def compute(sd: dict[str, torch.Tensor], inputs: list[Any]) -> dict[str, torch.Tensor]:
        x = inputs[0].to(torch.float64)
        sd64 = {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in sd.items()}
        with torch.no_grad():
            return {name: mha(sd64, x, num_heads, **kw) for name, kw in variants.items()}

    return compute
