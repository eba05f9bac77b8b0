"""Chapter 4: implementing a GPT model from scratch.

Leaf to root: ``LayerNorm``, ``GELU``, ``FeedForward``, the shortcut demo network, ``TransformerBlock``,
``GPTModel`` and greedy ``generate_text_simple``; then the chapter's exercises 4.1-4.3.
Creation order of submodules follows the book exactly, so ``torch.manual_seed(123)`` followed by
``GPTModel(GPT_CONFIG_124M)`` gives the book's weights and its generated token ids.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from .ch03 import MultiHeadAttention

GPT_CONFIG_124M: dict[str, Any] = {
    "vocab_size": 50257,     # BPE vocabulary of the GPT-2 tokenizer
    "context_length": 1024,  # longest input the positional embedding supports
    "emb_dim": 768,          # embedding (and residual stream) width
    "n_heads": 12,           # attention heads per block
    "n_layers": 12,          # transformer blocks
    "drop_rate": 0.1,        # one dropout rate for embeddings, attention weights and shortcuts
    "qkv_bias": False,       # the book trains without query/key/value biases (OpenAI's weights have them)
}


class LayerNorm(nn.Module):
    """Normalize the last dimension to zero mean and unit variance, then scale and shift."""

    def __init__(self, emb_dim: int) -> None:
        super().__init__()
        self.eps = 1e-5  # keeps the division finite for a constant input row
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        # Biased variance (divide by n), as GPT-2 and torch.nn.LayerNorm do.
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        norm_x = (x - mean) / torch.sqrt(var + self.eps)
        return self.scale * norm_x + self.shift


class GELU(nn.Module):
    """GELU with the tanh approximation used to train GPT-2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1 + torch.tanh(
            torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))
        ))


class FeedForward(nn.Module):
    """Position-wise MLP: expand to 4x the embedding width, GELU, project back."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),
            GELU(),
            nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ExampleDeepNeuralNetwork(nn.Module):
    """The section 4.4 demo: a stack of Linear+GELU layers, optionally with shortcut connections."""

    def __init__(self, layer_sizes: list[int], use_shortcut: bool) -> None:
        super().__init__()
        self.use_shortcut = use_shortcut
        # The book hard-codes five layers; any number of consecutive sizes works the same way.
        self.layers = nn.ModuleList([
            nn.Sequential(nn.Linear(n_in, n_out), GELU())
            for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            layer_output = layer(x)
            # A shortcut can only be added where the layer keeps the shape.
            if self.use_shortcut and x.shape == layer_output.shape:
                x = x + layer_output
            else:
                x = layer_output
        return x


class TransformerBlock(nn.Module):
    """Pre-LayerNorm transformer block: attention and feed-forward, each wrapped in a shortcut."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, num_tokens, emb_dim) in and out.
        shortcut = x
        x = self.norm1(x)
        x = self.att(x)
        x = self.drop_shortcut(x)
        x = x + shortcut

        shortcut = x
        x = self.norm2(x)
        x = self.ff(x)
        x = self.drop_shortcut(x)
        return x + shortcut


class GPTModel(nn.Module):
    """GPT-2: token + position embeddings, ``n_layers`` transformer blocks, final norm, vocabulary head."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        # No bias: GPT-2 ties this matrix to tok_emb, which has none.
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx: torch.Tensor) -> torch.Tensor:
        # in_idx: (batch, num_tokens) token ids -> logits (batch, num_tokens, vocab_size)
        _, seq_len = in_idx.shape
        tok_embeds = self.tok_emb(in_idx)  # (batch, num_tokens, emb_dim)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))  # (num_tokens, emb_dim)
        x = tok_embeds + pos_embeds  # broadcast over the batch
        x = self.drop_emb(x)
        x = self.trf_blocks(x)
        x = self.final_norm(x)
        return self.out_head(x)


def generate_text_simple(model: nn.Module, idx: torch.Tensor, max_new_tokens: int,
                         context_size: int) -> torch.Tensor:
    """Append ``max_new_tokens`` greedy (argmax) tokens to ``idx`` (batch, n); return (batch, n + new)."""
    for _ in range(max_new_tokens):
        # Crop to the last context_size tokens: the positional embedding supports no more.
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]  # (batch, vocab_size): only the last position predicts the next token
        probas = torch.softmax(logits, dim=-1)  # monotone, so argmax is unchanged; kept as in the book
        idx_next = torch.argmax(probas, dim=-1, keepdim=True)  # (batch, 1)
        idx = torch.cat((idx, idx_next), dim=1)  # (batch, n + 1)
    return idx


# ---- Exercises ---------------------------------------------------------------------------------


def _num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def exercise_4_1_parameter_counts(cfg: dict[str, Any]) -> dict[str, int]:
    """Exercise 4.1: parameters in one block's feed-forward module and in its attention module."""
    with torch.device("meta"):  # shapes only: no memory, no random init
        block = TransformerBlock(cfg)
    return {"feed_forward": _num_params(block.ff), "attention": _num_params(block.att)}


def exercise_4_2_model_configs() -> dict[str, dict[str, Any]]:
    """Exercise 4.2: full configurations of GPT-2 small, medium, large and XL."""
    sizes = {
        "gpt2-small": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
        "gpt2-medium": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
        "gpt2-large": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
        "gpt2-xl": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
    }
    return {name: {**GPT_CONFIG_124M, **size} for name, size in sizes.items()}


def exercise_4_2_model_size(cfg: dict[str, Any]) -> dict[str, float]:
    """Exercise 4.2: total parameters, parameters with the output head tied away, float32 size in MB."""
    with torch.device("meta"):  # even GPT-2 XL costs no memory here
        model = GPTModel(cfg)
    total = _num_params(model)
    return {
        "total_params": total,
        "params_without_out_head": total - model.out_head.weight.numel(),
        "size_mb": total * 4 / 1024**2,  # 4 bytes per float32 parameter
    }


def exercise_4_3_config() -> dict[str, Any]:
    """Exercise 4.3: GPT_CONFIG_124M with one dropout rate per place instead of ``drop_rate``."""
    cfg = {k: v for k, v in GPT_CONFIG_124M.items() if k != "drop_rate"}
    cfg.update(drop_rate_emb=0.1, drop_rate_attn=0.1, drop_rate_shortcut=0.1)
    return cfg


class TransformerBlockSeparateDropout(nn.Module):
    """TransformerBlock with ``drop_rate_attn`` in the attention and ``drop_rate_shortcut`` on the shortcuts."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        # The same submodules in the same order as TransformerBlock, so their state_dicts are interchangeable.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        x = self.att(x)
        x = self.drop_shortcut(x)
        x = x + shortcut

        shortcut = x
        x = self.norm2(x)
        x = self.ff(x)
        x = self.drop_shortcut(x)
        return x + shortcut


class GPTModelSeparateDropout(nn.Module):
    """GPTModel with ``drop_rate_emb`` on the embeddings and TransformerBlockSeparateDropout blocks."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate_emb"])
        self.trf_blocks = nn.Sequential(
            *[TransformerBlockSeparateDropout(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx: torch.Tensor) -> torch.Tensor:
        _, seq_len = in_idx.shape
        tok_embeds = self.tok_emb(in_idx)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = tok_embeds + pos_embeds
        x = self.drop_emb(x)
        x = self.trf_blocks(x)
        x = self.final_norm(x)
        return self.out_head(x)
