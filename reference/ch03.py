"""Chapter 3: coding attention mechanisms.

Leaf to root: self-attention with raw weight matrices (v1) and with ``nn.Linear`` (v2), causal
attention with dropout, a wrapper that stacks causal heads, and the efficient multi-head attention
that chapter 4's GPT model uses; then the chapter's exercises.

Submodules are created in the book's order (query, key, value, ...), so the same
``torch.manual_seed`` gives the book's weights and printed outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _causal_mask(context_length: int) -> Tensor:
    # 1 above the diagonal: token i may not attend to tokens j > i. Kept as float like the book,
    # so state dicts (which include this buffer) match the book's.
    return torch.triu(torch.ones(context_length, context_length), diagonal=1)


class SelfAttention_v1(nn.Module):
    """Scaled dot-product self-attention with trainable weight matrices (section 3.4.1)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x: Tensor) -> Tensor:
        # x: (num_tokens, d_in), or batched (..., num_tokens, d_in)
        keys = x @ self.W_key  # (..., num_tokens, d_out)
        queries = x @ self.W_query
        values = x @ self.W_value
        attn_scores = queries @ keys.transpose(-2, -1)  # (..., num_tokens, num_tokens)
        # Scale by sqrt(d_k) so large dot products do not saturate the softmax.
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        return attn_weights @ values  # (..., num_tokens, d_out)


class SelfAttention_v2(nn.Module):
    """Self-attention whose projections are ``nn.Linear`` layers (section 3.4.2)."""

    def __init__(self, d_in: int, d_out: int, qkv_bias: bool = False) -> None:
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)

    def forward(self, x: Tensor) -> Tensor:
        keys: Tensor = self.W_key(x)  # (..., num_tokens, d_out)
        queries: Tensor = self.W_query(x)
        values: Tensor = self.W_value(x)
        attn_scores = queries @ keys.transpose(-2, -1)  # (..., num_tokens, num_tokens)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        return attn_weights @ values  # (..., num_tokens, d_out)


class CausalAttention(nn.Module):
    """Single-head causal self-attention with dropout on the attention weights (section 3.5.3)."""

    def __init__(
        self, d_in: int, d_out: int, context_length: int, dropout: float, qkv_bias: bool = False
    ) -> None:
        super().__init__()
        self.d_out = d_out
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        # A buffer moves with .to(device) and is saved in the state dict, but is not trained.
        self.register_buffer("mask", _causal_mask(context_length))
        self.mask: Tensor

    def forward(self, x: Tensor) -> Tensor:
        b, num_tokens, d_in = x.shape
        keys: Tensor = self.W_key(x)  # (b, num_tokens, d_out)
        queries: Tensor = self.W_query(x)
        values: Tensor = self.W_value(x)
        attn_scores = queries @ keys.transpose(1, 2)  # (b, num_tokens, num_tokens)
        # Crop the mask to the actual length: inputs may be shorter than context_length.
        mask_bool = self.mask.bool()[:num_tokens, :num_tokens]
        # -inf before the softmax gives future tokens exactly zero weight, rows still sum to 1.
        attn_scores = attn_scores.masked_fill(mask_bool, -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        context_vec: Tensor = attn_weights @ values  # (b, num_tokens, d_out)
        return context_vec


class MultiHeadAttentionWrapper(nn.Module):
    """``num_heads`` independent causal heads, outputs concatenated (section 3.6.1)."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        context_length: int,
        dropout: float,
        num_heads: int,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            [CausalAttention(d_in, d_out, context_length, dropout, qkv_bias) for _ in range(num_heads)]
        )

    def forward(self, x: Tensor) -> Tensor:
        # Each head: (b, num_tokens, d_out) -> concatenated (b, num_tokens, num_heads * d_out)
        return torch.cat([head(x) for head in self.heads], dim=-1)


class MultiHeadAttention(nn.Module):
    """Multi-head causal attention: one projection per role, split into heads (section 3.6.2)."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        context_length: int,
        dropout: float,
        num_heads: int,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        # Mixes the heads' outputs back together.
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", _causal_mask(context_length))
        self.mask: Tensor

    def forward(self, x: Tensor) -> Tensor:
        b, num_tokens, d_in = x.shape
        keys = self.W_key(x)  # (b, num_tokens, d_out)
        queries = self.W_query(x)
        values = self.W_value(x)

        # Split the last dimension into heads.
        keys = keys.view(b, num_tokens, self.num_heads, self.head_dim)  # (b, num_tokens, num_heads, head_dim)
        queries = queries.view(b, num_tokens, self.num_heads, self.head_dim)
        values = values.view(b, num_tokens, self.num_heads, self.head_dim)

        # Heads become a batch dimension so one matmul attends within every head.
        keys = keys.transpose(1, 2)  # (b, num_heads, num_tokens, head_dim)
        queries = queries.transpose(1, 2)
        values = values.transpose(1, 2)

        attn_scores = queries @ keys.transpose(2, 3)  # (b, num_heads, num_tokens, num_tokens)
        mask_bool = self.mask.bool()[:num_tokens, :num_tokens]
        attn_scores = attn_scores.masked_fill(mask_bool, -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)

        context_vec = (attn_weights @ values).transpose(1, 2)  # (b, num_tokens, num_heads, head_dim)
        # transpose leaves the tensor non-contiguous, and view needs contiguous memory.
        context_vec = context_vec.contiguous().view(b, num_tokens, self.d_out)  # (b, num_tokens, d_out)
        out: Tensor = self.out_proj(context_vec)  # (b, num_tokens, d_out)
        return out


# ---------------------------------------------------------------------------------------------
# Exercises
# ---------------------------------------------------------------------------------------------


def exercise_3_1_copy_weights(sa_v1: SelfAttention_v1, sa_v2: SelfAttention_v2) -> None:
    """Exercise 3.1: copy ``sa_v2``'s weights into ``sa_v1`` in place so both give the same output."""
    # nn.Linear stores (d_out, d_in) and computes x @ W.T; v1 computes x @ W with W (d_in, d_out).
    with torch.no_grad():
        sa_v1.W_query.copy_(sa_v2.W_query.weight.T)
        sa_v1.W_key.copy_(sa_v2.W_key.weight.T)
        sa_v1.W_value.copy_(sa_v2.W_value.weight.T)


def exercise_3_2_wrapper(d_in: int, context_length: int) -> MultiHeadAttentionWrapper:
    """Exercise 3.2: a two-head wrapper (no dropout) whose context vectors are 2-dimensional."""
    # The heads' outputs are concatenated, so d_out = 1 per head gives 2 dimensions in all.
    return MultiHeadAttentionWrapper(d_in, 1, context_length, 0.0, num_heads=2)


def exercise_3_3_gpt2_attention() -> MultiHeadAttention:
    """Exercise 3.3: multi-head attention the size of GPT-2 small's (768 wide, 12 heads, 1024 ctx)."""
    return MultiHeadAttention(768, 768, 1024, 0.0, num_heads=12)
