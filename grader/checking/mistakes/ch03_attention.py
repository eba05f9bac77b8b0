"""Chapter 3: single-head self-attention (v1, v2), causal attention and the multi-head wrapper,
computed from the reference weights with one deliberate slip each."""

from __future__ import annotations

from typing import Any

import torch


Mistakes = Any  # a callable (state_dict, inputs) -> {diagnosis: output}


def _sd64(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in sd.items()}


def self_attention(sd: dict[str, torch.Tensor], x: torch.Tensor, *, linear: bool, scale: str = "d_out",
                   softmax_dim: int = -1) -> torch.Tensor:
    """SelfAttention_v1 (``linear=False``: x @ W) or _v2 (nn.Linear: x @ W.T + b) on (tokens, d_in)."""
    def project(name: str) -> torch.Tensor:
        if not linear:
            return x @ sd[name]
        out = x @ sd[f"{name}.weight"].T
        bias = sd.get(f"{name}.bias")
        return out + bias if bias is not None else out

    q, k, v = project("W_query"), project("W_key"), project("W_value")
    divisor = {"d_out": k.shape[-1] ** 0.5, "d_in": x.shape[-1] ** 0.5, "none": 1.0,
               "no_sqrt": float(k.shape[-1])}[scale]
    weights = torch.softmax((q @ k.transpose(-2, -1)) / divisor, dim=softmax_dim)
    return weights @ v


def self_attention_mistakes(linear: bool) -> Mistakes:
    variants: dict[str, dict[str, Any]] = {
        "attention_missing_scaling": {"scale": "none"},
        "attention_scaled_without_sqrt": {"scale": "no_sqrt"},
        "ch03_scaled_by_d_in": {"scale": "d_in"},
        "softmax_wrong_dim": {"softmax_dim": -2},
    }

    def compute(sd: dict[str, torch.Tensor], inputs: list[Any]) -> dict[str, torch.Tensor]:
        x = inputs[0].to(torch.float64)
        with torch.no_grad():
            return {name: self_attention(_sd64(sd), x, linear=linear, **kw) for name, kw in variants.items()}

    return compute


_CAUSAL_VARIANTS: dict[str, dict[str, Any]] = {
    "attention_missing_scaling": {"scale": "none"},
    "attention_scaled_without_sqrt": {"scale": "no_sqrt"},
    "mask_not_applied": {"mask": "none"},
    "mask_inverted": {"mask": "inverted"},
    "mask_filled_with_zero": {"mask": "zero_before_softmax"},
    "mask_after_softmax": {"mask": "after_softmax"},
    "softmax_wrong_dim": {"softmax_dim": -2},
}


def causal(sd: dict[str, torch.Tensor], x: torch.Tensor, *, mask: str = "causal", scale: str = "d_out",
           softmax_dim: int = -1) -> torch.Tensor:
    """CausalAttention in eval mode on (batch, tokens, d_in), with one slip selected by the switches.

    ``mask="inverted"`` hides the past instead of the future (``torch.tril(..., diagonal=-1)``,
    triu and tril swapped); a mask that also hides the diagonal leaves rows of only -inf, whose NaN
    outputs are reported as such.
    """
    def project(name: str) -> torch.Tensor:
        out = x @ sd[f"{name}.weight"].T
        bias = sd.get(f"{name}.bias")
        return out + bias if bias is not None else out

    q, k, v = project("W_query"), project("W_key"), project("W_value")
    t = x.shape[-2]
    future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    scores = q @ k.transpose(-2, -1)
    if mask == "causal":
        scores = scores.masked_fill(future, float("-inf"))
    elif mask == "inverted":
        scores = scores.masked_fill(future.T, float("-inf"))
    elif mask == "zero_before_softmax":
        scores = scores.masked_fill(future, 0.0)
    divisor = {"d_out": k.shape[-1] ** 0.5, "none": 1.0, "no_sqrt": float(k.shape[-1])}[scale]
    weights = torch.softmax(scores / divisor, dim=softmax_dim)
    if mask == "after_softmax":
        weights = weights.masked_fill(future, 0.0)
    return weights @ v


def causal_mistakes() -> Mistakes:
    def compute(sd: dict[str, torch.Tensor], inputs: list[Any]) -> dict[str, torch.Tensor]:
        x = inputs[0].to(torch.float64)
        with torch.no_grad():
            return {name: causal(_sd64(sd), x, **kw) for name, kw in _CAUSAL_VARIANTS.items()}

    return compute


def _head(sd: dict[str, torch.Tensor], h: int) -> dict[str, torch.Tensor]:
    prefix = f"heads.{h}."
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def wrapper_mistakes(num_heads: int) -> Mistakes:
    """MultiHeadAttentionWrapper: concatenated on the wrong axis, or every head with one head's weights."""
    def compute(sd: dict[str, torch.Tensor], inputs: list[Any]) -> dict[str, torch.Tensor]:
        x = inputs[0].to(torch.float64)
        sd = _sd64(sd)
        with torch.no_grad():
            heads = [causal(_head(sd, h), x) for h in range(num_heads)]
            last = heads[-1]
            out = {
                "ch03_wrapper_concat_wrong_dim": torch.cat(heads, dim=1),
                "ch03_wrapper_heads_share_weights": torch.cat([last] * num_heads, dim=-1),
            }
            for name, kw in _CAUSAL_VARIANTS.items():
                if name.startswith("mask"):
                    out[name] = torch.cat([causal(_head(sd, h), x, **kw) for h in range(num_heads)], dim=-1)
            return out

    return compute
