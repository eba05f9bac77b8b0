"""Chapter 4: implementing a GPT model from scratch.

Build GPT-2 piece by piece: layer normalization, the GELU activation, the feed-forward module,
shortcut connections, the transformer block, the full model and a greedy text generator. Then
the chapter's exercises 4.1-4.3.

Create submodules in the order the docstrings list them: with ``torch.manual_seed(123)`` the
random initial weights (and so the generated tokens) then match the book.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ch03 import MultiHeadAttention

GPT_CONFIG_124M: dict[str, Any] = {
    "vocab_size": 50257,     # vocabulary size of the GPT-2 BPE tokenizer
    "context_length": 1024,  # maximum number of input tokens
    "emb_dim": 768,          # embedding dimension
    "n_heads": 12,           # attention heads per transformer block
    "n_layers": 12,          # number of transformer blocks
    "drop_rate": 0.1,        # dropout rate
    "qkv_bias": False,       # bias terms in the query, key and value projections
}


class LayerNorm(nn.Module):
    """Layer normalization over the last dimension.

    Book section: 4.2.
    Task: normalize each row of the input (its last dimension) to mean 0 and variance 1, then
    apply a trainable elementwise ``scale`` (initialized to ones) and ``shift`` (zeros).
    Returns: a tensor with the input's shape.
    Hints:
    - Use the biased variance (``unbiased=False``, divide by n) like GPT-2 and nn.LayerNorm.
    - Add ``eps = 1e-5`` to the variance before the square root.
    """

    def __init__(self, emb_dim):
        """Store eps = 1e-5 and create the parameters `scale` (ones) and `shift` (zeros) of size emb_dim."""
        super().__init__()
        # BEGIN SOLUTION
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))
        # END SOLUTION

    def forward(self, x):
        """Return scale * (x - mean) / sqrt(var + eps) + shift, statistics over the last dimension."""
        # BEGIN SOLUTION
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        norm_x = (x - mean) / torch.sqrt(var + self.eps)
        return self.scale * norm_x + self.shift
        # END SOLUTION


class GELU(nn.Module):
    """The GELU activation in its tanh approximation (the form GPT-2 was trained with).

    Book section: 4.3.
    Task: compute 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))) elementwise.
    Returns: a tensor with the input's shape.
    Hint: ``torch.tanh``, ``torch.pow`` and ``torch.pi`` are all you need.
    """

    def forward(self, x):
        """Apply the tanh approximation of GELU elementwise."""
        # BEGIN SOLUTION
        return 0.5 * x * (1 + torch.tanh(
            torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))
        ))
        # END SOLUTION


class FeedForward(nn.Module):
    """The position-wise feed-forward module of a transformer block.

    Book section: 4.3.
    Task: an ``nn.Sequential`` named ``layers``: Linear(emb_dim, 4 * emb_dim), GELU(),
    Linear(4 * emb_dim, emb_dim), with ``emb_dim = cfg["emb_dim"]``.
    Returns: (batch, num_tokens, emb_dim) for an input of the same shape.
    Hint: the hidden layer is four times wider than the embedding.
    """

    def __init__(self, cfg):
        """Create `layers`: Linear(emb_dim, 4*emb_dim), GELU, Linear(4*emb_dim, emb_dim)."""
        super().__init__()
        # BEGIN SOLUTION
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),
            GELU(),
            nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),
        )
        # END SOLUTION

    def forward(self, x):
        """Run the input through `layers`."""
        # BEGIN SOLUTION
        return self.layers(x)
        # END SOLUTION


class ExampleDeepNeuralNetwork(nn.Module):
    """The deep network used to show why shortcut connections help gradients flow.

    Book section: 4.4.
    Task: ``layers`` is an ``nn.ModuleList`` with one ``nn.Sequential(nn.Linear(a, b), GELU())``
    for each consecutive pair (a, b) of ``layer_sizes`` (the book uses six sizes, so five layers).
    In ``forward``, when ``use_shortcut`` is true and a layer's output has the same shape as its
    input, add the input to the output (a shortcut); otherwise just pass the output on.
    Returns: the last layer's output, shape (..., layer_sizes[-1]).
    Hint: ``zip(layer_sizes[:-1], layer_sizes[1:])`` gives the consecutive pairs.
    """

    def __init__(self, layer_sizes, use_shortcut):
        """Store `use_shortcut` and create `layers`, one Sequential(Linear, GELU) per pair of sizes."""
        super().__init__()
        # BEGIN SOLUTION
        self.use_shortcut = use_shortcut
        self.layers = nn.ModuleList([
            nn.Sequential(nn.Linear(n_in, n_out), GELU())
            for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])
        ])
        # END SOLUTION

    def forward(self, x):
        """Apply each layer in turn, adding a shortcut where enabled and the shapes agree."""
        # BEGIN SOLUTION
        for layer in self.layers:
            layer_output = layer(x)
            if self.use_shortcut and x.shape == layer_output.shape:
                x = x + layer_output
            else:
                x = layer_output
        return x
        # END SOLUTION


class TransformerBlock(nn.Module):
    """The GPT-2 transformer block (pre-LayerNorm).

    Book section: 4.5.
    Task: create, in this order, ``att`` (a MultiHeadAttention from emb_dim to emb_dim with the
    config's context_length, n_heads, drop_rate and qkv_bias), ``ff`` (FeedForward), ``norm1`` and
    ``norm2`` (LayerNorm) and ``drop_shortcut`` (nn.Dropout(drop_rate)). Forward:
    x = x + drop_shortcut(att(norm1(x))), then x = x + drop_shortcut(ff(norm2(x))).
    Returns: (batch, num_tokens, emb_dim), the input's shape.
    Hints:
    - Normalize *before* each sub-layer; the shortcut adds the un-normalized input.
    - Keep the creation order: it decides which random numbers each layer gets.
    """

    def __init__(self, cfg):
        """Create att, ff, norm1, norm2 and drop_shortcut from the config dict."""
        super().__init__()
        # BEGIN SOLUTION
        self.att = MultiHeadAttention(
            d_in=cfg["emb_dim"],
            d_out=cfg["emb_dim"],
            context_length=cfg["context_length"],
            num_heads=cfg["n_heads"],
            dropout=cfg["drop_rate"],
            qkv_bias=cfg["qkv_bias"],
        )
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])
        # END SOLUTION

    def forward(self, x):
        """Apply the attention and feed-forward sub-layers, each as norm -> layer -> dropout -> add."""
        # BEGIN SOLUTION
        shortcut = x
        x = self.norm1(x)
        x = self.att(x)
        x = self.drop_shortcut(x)
        x = x + shortcut

        shortcut = x
        x = self.norm2(x)
        x = self.ff(x)
        x = self.drop_shortcut(x)
        x = x + shortcut
        return x
        # END SOLUTION


class GPTModel(nn.Module):
    """The GPT-2 model.

    Book section: 4.6.
    Task: create, in this order, ``tok_emb`` (Embedding(vocab_size, emb_dim)), ``pos_emb``
    (Embedding(context_length, emb_dim)), ``drop_emb`` (Dropout(drop_rate)), ``trf_blocks``
    (an nn.Sequential of n_layers TransformerBlocks), ``final_norm`` (LayerNorm) and ``out_head``
    (Linear(emb_dim, vocab_size) without bias). Forward: token embeddings plus the embeddings of
    positions 0..num_tokens-1, dropout, the blocks, the final norm, the output head.
    Returns: logits of shape (batch, num_tokens, vocab_size) for token ids of shape (batch, num_tokens).
    Hint: create the position ids on the same device as the input (``device=in_idx.device``).
    """

    def __init__(self, cfg):
        """Create tok_emb, pos_emb, drop_emb, trf_blocks, final_norm and out_head from the config."""
        super().__init__()
        # BEGIN SOLUTION
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        # END SOLUTION

    def forward(self, in_idx):
        """Map token ids (batch, num_tokens) to logits (batch, num_tokens, vocab_size)."""
        # BEGIN SOLUTION
        batch_size, seq_len = in_idx.shape
        tok_embeds = self.tok_emb(in_idx)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = tok_embeds + pos_embeds
        x = self.drop_emb(x)
        x = self.trf_blocks(x)
        x = self.final_norm(x)
        logits = self.out_head(x)
        return logits
        # END SOLUTION


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Append max_new_tokens greedily chosen tokens to idx and return the longer tensor.

    Book section: 4.7.
    Task: repeat ``max_new_tokens`` times: crop ``idx`` (batch, n) to its last ``context_size``
    tokens, run the model without gradients, take the logits of the last position, pick the
    most likely token of each row and append it.
    Returns: token ids of shape (batch, n + max_new_tokens).
    Hints:
    - ``torch.argmax(..., dim=-1, keepdim=True)`` keeps the (batch, 1) shape for ``torch.cat``.
    - Wrap the model call in ``torch.no_grad()``.
    """
    # BEGIN SOLUTION
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]
        probas = torch.softmax(logits, dim=-1)
        idx_next = torch.argmax(probas, dim=-1, keepdim=True)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx
    # END SOLUTION


# ---- Exercises ---------------------------------------------------------------------------------


def exercise_4_1_parameter_counts(cfg):
    """Return the parameter counts of one transformer block's feed-forward and attention modules.

    Book section: 4.6 (exercise 4.1).
    Task: build one ``TransformerBlock(cfg)`` and count the parameters of its ``ff`` and its ``att``.
    Returns: ``{"feed_forward": int, "attention": int}``.
    Hint: build it inside ``with torch.device("meta"):`` so no memory is spent on the weights.
    """
    # BEGIN SOLUTION
    with torch.device("meta"):
        block = TransformerBlock(cfg)
    return {
        "feed_forward": sum(p.numel() for p in block.ff.parameters()),
        "attention": sum(p.numel() for p in block.att.parameters()),
    }
    # END SOLUTION


def exercise_4_2_model_configs():
    """Return full configuration dicts for GPT-2 small, medium, large and XL.

    Book section: 4.6 (exercise 4.2).
    Task: start from GPT_CONFIG_124M and change only emb_dim, n_layers and n_heads: small
    768/12/12, medium 1024/24/16, large 1280/36/20, XL 1600/48/25.
    Returns: a dict with keys "gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl", each a full
    config dict (all seven keys of GPT_CONFIG_124M).
    Hint: ``{**GPT_CONFIG_124M, **changes}`` makes an updated copy.
    """
    # BEGIN SOLUTION
    sizes = {
        "gpt2-small": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
        "gpt2-medium": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
        "gpt2-large": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
        "gpt2-xl": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
    }
    return {name: {**GPT_CONFIG_124M, **size} for name, size in sizes.items()}
    # END SOLUTION


def exercise_4_2_model_size(cfg):
    """Return the total parameters, the parameters without the output head, and the size in MB.

    Book section: 4.6 (exercise 4.2).
    Task: build ``GPTModel(cfg)`` on the meta device and count its parameters.
    Returns: ``{"total_params": int, "params_without_out_head": int, "size_mb": float}`` where
    params_without_out_head subtracts ``out_head.weight`` (GPT-2 ties it to the token embedding)
    and size_mb is the float32 size of all parameters, total * 4 / 1024**2.
    Hint: ``with torch.device("meta"):`` builds even GPT-2 XL instantly and with no memory.
    """
    # BEGIN SOLUTION
    with torch.device("meta"):
        model = GPTModel(cfg)
    total_params = sum(p.numel() for p in model.parameters())
    return {
        "total_params": total_params,
        "params_without_out_head": total_params - model.out_head.weight.numel(),
        "size_mb": total_params * 4 / (1024 * 1024),
    }
    # END SOLUTION


def exercise_4_3_config():
    """Return GPT_CONFIG_124M with drop_rate replaced by three separate dropout rates.

    Book section: 4.6 (exercise 4.3).
    Task: copy GPT_CONFIG_124M, remove "drop_rate" and add "drop_rate_emb", "drop_rate_attn"
    and "drop_rate_shortcut" (0.1 each).
    Returns: the new config dict.
    """
    # BEGIN SOLUTION
    cfg = {key: value for key, value in GPT_CONFIG_124M.items() if key != "drop_rate"}
    cfg["drop_rate_emb"] = 0.1
    cfg["drop_rate_attn"] = 0.1
    cfg["drop_rate_shortcut"] = 0.1
    return cfg
    # END SOLUTION


class TransformerBlockSeparateDropout(nn.Module):
    """A transformer block with separate dropout rates for attention and shortcuts.

    Book section: 4.6 (exercise 4.3).
    Task: the same block as TransformerBlock (same submodule names, same order, same forward),
    but the attention module uses ``cfg["drop_rate_attn"]`` and ``drop_shortcut`` uses
    ``cfg["drop_rate_shortcut"]``.
    Returns: (batch, num_tokens, emb_dim), the input's shape.
    Hint: keep the names so that a TransformerBlock's state_dict loads into this block.
    """

    def __init__(self, cfg):
        """Create att, ff, norm1, norm2 and drop_shortcut, with the attention and shortcut dropout rates."""
        super().__init__()
        # BEGIN SOLUTION
        self.att = MultiHeadAttention(
            d_in=cfg["emb_dim"],
            d_out=cfg["emb_dim"],
            context_length=cfg["context_length"],
            num_heads=cfg["n_heads"],
            dropout=cfg["drop_rate_attn"],
            qkv_bias=cfg["qkv_bias"],
        )
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate_shortcut"])
        # END SOLUTION

    def forward(self, x):
        """Apply the attention and feed-forward sub-layers, each as norm -> layer -> dropout -> add."""
        # BEGIN SOLUTION
        shortcut = x
        x = self.drop_shortcut(self.att(self.norm1(x)))
        x = x + shortcut

        shortcut = x
        x = self.drop_shortcut(self.ff(self.norm2(x)))
        x = x + shortcut
        return x
        # END SOLUTION


class GPTModelSeparateDropout(nn.Module):
    """A GPT model with separate dropout rates for embeddings, attention and shortcuts.

    Book section: 4.6 (exercise 4.3).
    Task: the same model as GPTModel (same submodule names, order and forward), but ``drop_emb``
    uses ``cfg["drop_rate_emb"]`` and the blocks are TransformerBlockSeparateDropout.
    Returns: logits of shape (batch, num_tokens, vocab_size).
    Hint: with the same names, a GPTModel's state_dict loads into this model unchanged.
    """

    def __init__(self, cfg):
        """Create tok_emb, pos_emb, drop_emb, trf_blocks, final_norm and out_head from the config."""
        super().__init__()
        # BEGIN SOLUTION
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate_emb"])
        self.trf_blocks = nn.Sequential(
            *[TransformerBlockSeparateDropout(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        # END SOLUTION

    def forward(self, in_idx):
        """Map token ids (batch, num_tokens) to logits (batch, num_tokens, vocab_size)."""
        # BEGIN SOLUTION
        batch_size, seq_len = in_idx.shape
        tok_embeds = self.tok_emb(in_idx)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = self.drop_emb(tok_embeds + pos_embeds)
        x = self.trf_blocks(x)
        x = self.final_norm(x)
        return self.out_head(x)
        # END SOLUTION
