# ch03.py: your exercises for "Coding attention mechanisms" in "Build a Large Language Model (From
# Scratch)".
# Replace each `raise NotImplementedError(...)` with your code; the docstrings say what to build.
# Check your work with `llmgrade check <id>` (for example `llmgrade check ch03.SelfAttention_v1`);
# `llmgrade list` shows every id.
#
"""Chapter 3: coding attention mechanisms.

You build self-attention with trainable weights (two ways), causal attention with dropout, a
wrapper that stacks several causal heads, and the efficient multi-head attention that the GPT
model of chapter 4 uses; then exercises 3.1 to 3.3.

Create the weights in the order the book does (query, key, value, then the rest): with the same
``torch.manual_seed`` your modules then start from the book's weights and print the book's numbers.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SelfAttention_v1(nn.Module):
    """Scaled dot-product self-attention with trainable weight matrices.

    Book section: 3.4.1.
    Task: hold three ``nn.Parameter`` matrices ``W_query``, ``W_key`` and ``W_value``, each
    ``torch.rand(d_in, d_out)``. ``forward`` projects the inputs ``x`` of shape (num_tokens, d_in)
    to queries, keys and values, scores every query against every key, normalizes the scores with
    a softmax after dividing by the square root of the key dimension, and returns the weighted sum
    of the values.
    Returns: the context vectors, shape (num_tokens, d_out).
    Hints:
    - The attention scores are ``queries @ keys.T``, shape (num_tokens, num_tokens).
    """

    def __init__(self, d_in, d_out):
        """Create the parameters W_query, W_key and W_value (in that order), each (d_in, d_out)."""
        super().__init__()
        raise NotImplementedError("Exercise ch03.SelfAttention_v1: Create the parameters W_query, W_key and W_value (in that order), each (d_in, d_out).")

    def forward(self, x):
        """Return the context vectors of ``x``, shape (num_tokens, d_out)."""
        raise NotImplementedError("Exercise ch03.SelfAttention_v1: Return the context vectors of ``x``, shape (num_tokens, d_out).")


class SelfAttention_v2(nn.Module):
    """Self-attention whose query, key and value projections are ``nn.Linear`` layers.

    Book section: 3.4.2.
    Task: the same computation as ``SelfAttention_v1``, but with ``W_query``, ``W_key`` and
    ``W_value`` as ``nn.Linear(d_in, d_out, bias=qkv_bias)`` layers, which initialize their
    weights better than ``torch.rand``.
    Returns: the context vectors, shape (num_tokens, d_out).
    """

    def __init__(self, d_in, d_out, qkv_bias=False):
        """Create the linear layers W_query, W_key and W_value (in that order)."""
        super().__init__()
        raise NotImplementedError("Exercise ch03.SelfAttention_v2: Create the linear layers W_query, W_key and W_value (in that order).")

    def forward(self, x):
        """Return the context vectors of ``x``, shape (num_tokens, d_out)."""
        raise NotImplementedError("Exercise ch03.SelfAttention_v2: Return the context vectors of ``x``, shape (num_tokens, d_out).")


class CausalAttention(nn.Module):
    """Single-head self-attention that cannot look ahead, with dropout on the attention weights.

    Book section: 3.5.3.
    Task: like ``SelfAttention_v2`` but for batches ``x`` of shape (batch, num_tokens, d_in).
    Before the softmax, set the scores of every future token (key position > query position) to
    ``-inf`` so they get zero weight; then apply ``nn.Dropout(dropout)`` to the attention weights.
    Keep the upper-triangular mask as a buffer named ``mask`` (shape (context_length,
    context_length)), and make it work for inputs shorter than ``context_length``.
    Returns: the context vectors, shape (batch, num_tokens, d_out).
    Hints:
    - ``torch.triu(torch.ones(n, n), diagonal=1)`` marks the future positions;
      ``self.register_buffer("mask", ...)`` moves it with the module to the GPU.
    - Use only the top-left (num_tokens, num_tokens) corner of the mask.
    """

    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        """Create W_query, W_key, W_value, the dropout layer and the causal `mask` buffer."""
        super().__init__()
        raise NotImplementedError("Exercise ch03.CausalAttention: Create W_query, W_key, W_value, the dropout layer and the causal `mask` buffer.")

    def forward(self, x):
        """Return the causal context vectors of ``x``, shape (batch, num_tokens, d_out)."""
        raise NotImplementedError("Exercise ch03.CausalAttention: Return the causal context vectors of ``x``, shape (batch, num_tokens, d_out).")


class MultiHeadAttentionWrapper(nn.Module):
    """Several ``CausalAttention`` heads side by side, their outputs concatenated.

    Book section: 3.6.1.
    Task: keep ``num_heads`` independent ``CausalAttention`` modules in an ``nn.ModuleList`` named
    ``heads``; ``forward`` runs every head on ``x`` and concatenates the results along the last
    dimension.
    Returns: shape (batch, num_tokens, num_heads * d_out).
    """

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        """Create the ``heads`` ModuleList of ``num_heads`` CausalAttention modules."""
        super().__init__()
        raise NotImplementedError("Exercise ch03.MultiHeadAttentionWrapper: Create the ``heads`` ModuleList of ``num_heads`` CausalAttention modules.")

    def forward(self, x):
        """Return the heads' outputs concatenated, shape (batch, num_tokens, num_heads * d_out)."""
        raise NotImplementedError("Exercise ch03.MultiHeadAttentionWrapper: Return the heads' outputs concatenated, shape (batch, num_tokens, num_heads * d_out).")


class MultiHeadAttention(nn.Module):
    """Multi-head causal self-attention with one set of projections split into heads.

    Book section: 3.6.2.
    Task: project ``x`` (batch, num_tokens, d_in) once each to queries, keys and values of width
    ``d_out``, split the last dimension into ``num_heads`` heads of ``head_dim = d_out // num_heads``,
    run masked (causal) scaled dot-product attention with dropout in every head at once, merge the
    heads back to ``d_out`` and mix them with the output projection ``out_proj``
    (``nn.Linear(d_out, d_out)``). Keep ``d_out``, ``num_heads`` and ``head_dim`` as attributes and
    the causal mask as a buffer named ``mask``; ``d_out`` must be divisible by ``num_heads``.
    Returns: the context vectors, shape (batch, num_tokens, d_out).
    Hints:
    - ``.view(b, num_tokens, num_heads, head_dim)`` then ``.transpose(1, 2)`` puts the heads in
      front of the tokens, so one matrix product attends within every head.
    - After ``transpose`` call ``.contiguous()`` before ``.view`` when merging the heads.
    """

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        """Create W_query, W_key, W_value, out_proj, dropout and the causal `mask` buffer."""
        super().__init__()
        raise NotImplementedError("Exercise ch03.MultiHeadAttention: Create W_query, W_key, W_value, out_proj, dropout and the causal `mask` buffer.")

    def forward(self, x):
        """Return the context vectors, shape (batch, num_tokens, d_out)."""
        raise NotImplementedError("Exercise ch03.MultiHeadAttention: Return the context vectors, shape (batch, num_tokens, d_out).")


# ---------------------------------------------------------------------------------------------
# Exercises
# ---------------------------------------------------------------------------------------------


def exercise_3_1_copy_weights(sa_v1, sa_v2):
    """Copy the weights of ``sa_v2`` into ``sa_v1`` in place, so both give the same outputs.

    Exercise 3.1 (section 3.4.2): ``SelfAttention_v1`` computes ``x @ W`` with ``W`` of shape
    (d_in, d_out), while ``nn.Linear`` keeps its weight as (d_out, d_in) and computes ``x @ W.T``.
    Change ``sa_v1``'s three parameters so that ``sa_v1(x)`` equals ``sa_v2(x)``.
    Returns: nothing.
    Hints:
    - Modify parameters in place under ``torch.no_grad()``.
    """
    raise NotImplementedError("Exercise 3.1: Copy the weights of ``sa_v2`` into ``sa_v1`` in place, so both give the same outputs.")


def exercise_3_2_wrapper(d_in, context_length):
    """Return a two-head MultiHeadAttentionWrapper whose context vectors are 2-dimensional.

    Exercise 3.2 (section 3.6.1): choose the arguments (2 heads, no dropout) so that the output
    of the wrapper on a (batch, num_tokens, d_in) input has shape (batch, num_tokens, 2).
    Returns: a ``MultiHeadAttentionWrapper``.
    """
    raise NotImplementedError("Exercise 3.2: Return a two-head MultiHeadAttentionWrapper whose context vectors are 2-dimensional.")


def exercise_3_3_gpt2_attention():
    """Return a MultiHeadAttention module the size of the one in the smallest GPT-2 model.

    Exercise 3.3 (section 3.6.2): 768-dimensional inputs and outputs, 12 heads, a context length
    of 1024 tokens and no dropout.
    Returns: a ``MultiHeadAttention``.
    """
    raise NotImplementedError("Exercise 3.3: Return a MultiHeadAttention module the size of the one in the smallest GPT-2 model.")
