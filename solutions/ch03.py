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
        # BEGIN SOLUTION
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))
        # END SOLUTION

    def forward(self, x):
        """Return the context vectors of ``x``, shape (num_tokens, d_out)."""
        # BEGIN SOLUTION
        keys = x @ self.W_key
        queries = x @ self.W_query
        values = x @ self.W_value
        attn_scores = queries @ keys.T
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        return attn_weights @ values
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        # END SOLUTION

    def forward(self, x):
        """Return the context vectors of ``x``, shape (num_tokens, d_out)."""
        # BEGIN SOLUTION
        keys = self.W_key(x)
        queries = self.W_query(x)
        values = self.W_value(x)
        attn_scores = queries @ keys.T
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        return attn_weights @ values
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.d_out = d_out
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))
        # END SOLUTION

    def forward(self, x):
        """Return the causal context vectors of ``x``, shape (batch, num_tokens, d_out)."""
        # BEGIN SOLUTION
        b, num_tokens, d_in = x.shape
        keys = self.W_key(x)
        queries = self.W_query(x)
        values = self.W_value(x)
        attn_scores = queries @ keys.transpose(1, 2)
        attn_scores = attn_scores.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        return attn_weights @ values
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.heads = nn.ModuleList(
            [CausalAttention(d_in, d_out, context_length, dropout, qkv_bias) for _ in range(num_heads)]
        )
        # END SOLUTION

    def forward(self, x):
        """Return the heads' outputs concatenated, shape (batch, num_tokens, num_heads * d_out)."""
        # BEGIN SOLUTION
        return torch.cat([head(x) for head in self.heads], dim=-1)
        # END SOLUTION


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
        # BEGIN SOLUTION
        assert d_out % num_heads == 0, "d_out must be divisible by num_heads"
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))
        # END SOLUTION

    def forward(self, x):
        """Return the context vectors, shape (batch, num_tokens, d_out)."""
        # BEGIN SOLUTION
        b, num_tokens, d_in = x.shape
        keys = self.W_key(x)
        queries = self.W_query(x)
        values = self.W_value(x)

        keys = keys.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        queries = queries.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = values.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)

        attn_scores = queries @ keys.transpose(2, 3)
        mask_bool = self.mask.bool()[:num_tokens, :num_tokens]
        attn_scores.masked_fill_(mask_bool, -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)

        context_vec = (attn_weights @ values).transpose(1, 2)
        context_vec = context_vec.contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context_vec)
        # END SOLUTION


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
    # BEGIN SOLUTION
    with torch.no_grad():
        sa_v1.W_query.copy_(sa_v2.W_query.weight.T)
        sa_v1.W_key.copy_(sa_v2.W_key.weight.T)
        sa_v1.W_value.copy_(sa_v2.W_value.weight.T)
    # END SOLUTION


def exercise_3_2_wrapper(d_in, context_length):
    """Return a two-head MultiHeadAttentionWrapper whose context vectors are 2-dimensional.

    Exercise 3.2 (section 3.6.1): choose the arguments (2 heads, no dropout) so that the output
    of the wrapper on a (batch, num_tokens, d_in) input has shape (batch, num_tokens, 2).
    Returns: a ``MultiHeadAttentionWrapper``.
    """
    # BEGIN SOLUTION
    # The heads' outputs are concatenated: 2 heads of d_out=1 give 2 dimensions.
    return MultiHeadAttentionWrapper(d_in, 1, context_length, 0.0, num_heads=2)
    # END SOLUTION


def exercise_3_3_gpt2_attention():
    """Return a MultiHeadAttention module the size of the one in the smallest GPT-2 model.

    Exercise 3.3 (section 3.6.2): 768-dimensional inputs and outputs, 12 heads, a context length
    of 1024 tokens and no dropout.
    Returns: a ``MultiHeadAttention``.
    """
    # BEGIN SOLUTION
    return MultiHeadAttention(768, 768, 1024, 0.0, num_heads=12)
    # END SOLUTION
