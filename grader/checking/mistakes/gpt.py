"""Chapter 4: the GPT-2 pieces as plain functions of a state_dict, with switches for the usual mistakes.

Every function here computes, on the trusted side and in float64, what a student's module would
output if it made one specific slip (unbiased variance in LayerNorm, exact GELU, a missing
shortcut, post-LayerNorm, no position embeddings, ...). The ``*_mistakes`` factories turn them into
``mistakes`` callables for :func:`grader.checking.checks.module_forward`. Dropout is modelled only at rate
1.0 (the layer outputs zeros): the checks use rates 0 and 1 so training-mode outputs are
deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from grader.checking.mistakes.attention import mha

State = dict[str, torch.Tensor]
MistakesFn = Callable[[State, list[Any]], Mapping[str, torch.Tensor]]


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def sub_state(sd: Mapping[str, torch.Tensor], prefix: str) -> State:
    """The entries of ``sd`` under ``prefix.``, with the prefix removed."""
    start = prefix + "."
    return {k[len(start):]: v for k, v in sd.items() if k.startswith(start)}


def as_float64(sd: Mapping[str, torch.Tensor]) -> State:
    return {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in sd.items()}


def linear(sd: Mapping[str, torch.Tensor], prefix: str, x: torch.Tensor) -> torch.Tensor:
    out = x @ sd[_key(prefix, "weight")].to(x.dtype).T
    bias = sd.get(_key(prefix, "bias"))
    return out + bias.to(x.dtype) if bias is not None else out


# ---- LayerNorm and GELU ------------------------------------------------------------------------


def layer_norm(sd: Mapping[str, torch.Tensor], prefix: str, x: torch.Tensor, *, unbiased: bool = False,
               eps: float = 1e-5, eps_inside: bool = True, affine: str = "scale_shift") -> torch.Tensor:
    """LayerNorm over the last dimension; ``affine``: scale_shift (right), swapped or none."""
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=unbiased)
    if eps_inside:
        norm = (x - mean) / torch.sqrt(var + eps)
    else:
        norm = (x - mean) / (torch.sqrt(var) + eps)
    scale, shift = sd[_key(prefix, "scale")].to(x.dtype), sd[_key(prefix, "shift")].to(x.dtype)
    if affine == "swapped":
        return shift * norm + scale
    if affine == "none":
        return norm
    return scale * norm + shift


def gelu(x: torch.Tensor, form: str = "tanh") -> torch.Tensor:
    """GELU: the book's tanh approximation, or a mistaken form (erf, sigmoid, no_half, relu, none)."""
    if form == "erf":
        return torch.nn.functional.gelu(x)
    if form == "sigmoid":
        return x * torch.sigmoid(1.702 * x)
    if form == "relu":
        return torch.relu(x)
    if form == "none":
        return x
    inner = torch.tanh((2.0 / torch.pi) ** 0.5 * (x + 0.044715 * x ** 3))
    return (1.0 if form == "no_half" else 0.5) * x * (1 + inner)


def feed_forward(sd: Mapping[str, torch.Tensor], prefix: str, x: torch.Tensor,
                 activation: str = "tanh") -> torch.Tensor:
    hidden = gelu(linear(sd, _key(prefix, "layers.0"), x), activation)
    return linear(sd, _key(prefix, "layers.2"), hidden)


def deep_network(sd: Mapping[str, torch.Tensor], x: torch.Tensor, *, shortcut: bool) -> torch.Tensor:
    """The section 4.4 network (layers.<i>.0 = Linear, then GELU) with or without shortcuts."""
    i = 0
    while f"layers.{i}.0.weight" in sd:
        out = gelu(linear(sd, f"layers.{i}.0", x))
        x = x + out if shortcut and out.shape == x.shape else out
        i += 1
    return x


# ---- Transformer block and GPT model ----------------------------------------------------------


def attention(sd: Mapping[str, torch.Tensor], prefix: str, x: torch.Tensor, num_heads: int, *,
              weights_dropped: bool = False) -> torch.Tensor:
    """MultiHeadAttention (eval mode); ``weights_dropped``: attention dropout at rate 1."""
    own = sub_state(sd, prefix)
    if weights_dropped:  # every attention weight zeroed: only out_proj's bias is left
        return linear(own, "out_proj", torch.zeros_like(x))
    return mha(own, x, num_heads)


def block(sd: Mapping[str, torch.Tensor], prefix: str, x: torch.Tensor, num_heads: int, *,
          layout: str = "pre", attn_shortcut: bool = True, ff_shortcut: bool = True,
          norms_swapped: bool = False, attn_dropped: bool = False, shortcut_dropped: bool = False,
          shortcut_dropout: bool = True) -> torch.Tensor:
    """TransformerBlock forward.

    ``layout``: ``pre`` (the book), ``post`` (norm after the addition) or ``normalized_shortcut``
    (the shortcut adds the normalized input). ``attn_dropped``/``shortcut_dropped``: those dropout
    layers at rate 1; ``shortcut_dropout=False``: the block forgets to apply ``drop_shortcut``.
    """
    n1, n2 = (_key(prefix, "norm2"), _key(prefix, "norm1")) if norms_swapped else \
        (_key(prefix, "norm1"), _key(prefix, "norm2"))

    def att(h: torch.Tensor) -> torch.Tensor:
        return attention(sd, _key(prefix, "att"), h, num_heads, weights_dropped=attn_dropped)

    def ff(h: torch.Tensor) -> torch.Tensor:
        return feed_forward(sd, _key(prefix, "ff"), h)

    def drop(h: torch.Tensor) -> torch.Tensor:
        return h * 0 if shortcut_dropped and shortcut_dropout else h

    if layout == "post":
        x = layer_norm(sd, n1, x + drop(att(x)) if attn_shortcut else drop(att(x)))
        return layer_norm(sd, n2, x + drop(ff(x)) if ff_shortcut else drop(ff(x)))
    for norm, layer, keep in ((n1, att, attn_shortcut), (n2, ff, ff_shortcut)):
        normed = layer_norm(sd, norm, x)
        out = drop(layer(normed))
        residual = normed if layout == "normalized_shortcut" else x
        x = out + residual if keep else out
    return x


def gpt(sd: Mapping[str, torch.Tensor], idx: torch.Tensor, num_heads: int, *, positions: bool = True,
        final_norm: bool = True, emb_dropped: bool = False, attn_dropped: bool = False,
        shortcut_dropped: bool = False) -> torch.Tensor:
    """GPTModel forward for token ids ``idx`` (batch, tokens) -> logits (float64)."""
    tok = sd["tok_emb.weight"]
    x = tok[idx]
    if positions:
        x = x + sd["pos_emb.weight"][torch.arange(idx.shape[1])]
    if emb_dropped:
        x = x * 0
    i = 0
    while f"trf_blocks.{i}.norm1.scale" in sd:
        x = block(sd, f"trf_blocks.{i}", x, num_heads, attn_dropped=attn_dropped,
                  shortcut_dropped=shortcut_dropped)
        i += 1
    if final_norm:
        x = layer_norm(sd, "final_norm", x)
    return linear(sd, "out_head", x)


# ---- mistakes callables -----------------------------------------------------------------------


def _float_input(inputs: list[Any]) -> torch.Tensor:
    x: torch.Tensor = inputs[0]
    return x.to(torch.float64)


def _compute(variants: Mapping[str, Callable[[State, torch.Tensor], torch.Tensor]],
             as_ids: bool = False) -> MistakesFn:
    def compute(sd: State, inputs: list[Any]) -> dict[str, torch.Tensor]:
        sd64 = as_float64(sd)
        x = inputs[0] if as_ids else _float_input(inputs)
        with torch.no_grad():
            return {name: fn(sd64, x) for name, fn in variants.items()}
    return compute


def layernorm_mistakes() -> MistakesFn:
    return _compute({
        "ch04_layernorm_unbiased_variance": lambda sd, x: layer_norm(sd, "", x, unbiased=True),
        "ch04_layernorm_eps_outside_sqrt": lambda sd, x: layer_norm(sd, "", x, eps_inside=False),
        "ch04_layernorm_scale_shift_swapped": lambda sd, x: layer_norm(sd, "", x, affine="swapped"),
        "ch04_layernorm_no_scale_shift": lambda sd, x: layer_norm(sd, "", x, affine="none"),
        "ch04_layernorm_missing_eps": lambda sd, x: layer_norm(sd, "", x, eps=0.0),
    })


def gelu_mistakes() -> MistakesFn:
    return _compute({
        "ch04_gelu_erf_exact": lambda sd, x: gelu(x, "erf"),
        "ch04_gelu_sigmoid_approximation": lambda sd, x: gelu(x, "sigmoid"),
        "ch04_gelu_missing_half": lambda sd, x: gelu(x, "no_half"),
    })


def feed_forward_mistakes() -> MistakesFn:
    return _compute({
        "ch04_ff_missing_activation": lambda sd, x: feed_forward(sd, "", x, "none"),
        "ch04_ff_relu_activation": lambda sd, x: feed_forward(sd, "", x, "relu"),
    })


def deep_network_mistakes(use_shortcut: bool) -> MistakesFn:
    if use_shortcut:
        return _compute({"ch04_shortcut_not_applied": lambda sd, x: deep_network(sd, x, shortcut=False)})
    return _compute({"ch04_shortcut_ignores_flag": lambda sd, x: deep_network(sd, x, shortcut=True)})


def block_mistakes(num_heads: int) -> MistakesFn:
    def variant(**kw: Any) -> Callable[[State, torch.Tensor], torch.Tensor]:
        return lambda sd, x: block(sd, "", x, num_heads, **kw)
    return _compute({
        "ch04_block_missing_shortcuts": variant(attn_shortcut=False, ff_shortcut=False),
        "ch04_block_missing_attention_shortcut": variant(attn_shortcut=False),
        "ch04_block_missing_ff_shortcut": variant(ff_shortcut=False),
        "ch04_block_post_layernorm": variant(layout="post"),
        "ch04_block_shortcut_after_norm": variant(layout="normalized_shortcut"),
        "ch04_block_norms_swapped": variant(norms_swapped=True),
    })


def block_dropout_mistakes(num_heads: int) -> MistakesFn:
    """For a block at drop_rate 1.0 in training mode (the right output is the input itself)."""
    return _compute({
        "ch04_block_missing_shortcut_dropout":
            lambda sd, x: block(sd, "", x, num_heads, attn_dropped=True, shortcut_dropped=True,
                                shortcut_dropout=False),
    })


def gpt_mistakes(num_heads: int) -> MistakesFn:
    return _compute({
        "ch04_gpt_missing_position_embeddings": lambda sd, idx: gpt(sd, idx, num_heads, positions=False),
        "ch04_gpt_missing_final_norm": lambda sd, idx: gpt(sd, idx, num_heads, final_norm=False),
    }, as_ids=True)


DROPOUT_PLACES = ("emb", "attn", "shortcut")


def separate_dropout_mistakes(num_heads: int, place: str) -> MistakesFn:
    """For exercise 4.3 with only ``drop_rate_<place>`` at 1.0 (training mode).

    ``ch04_dropout_rate_ignored``: the output is as if no dropout acted at all;
    ``ch04_dropout_rates_swapped``: the rate acted in another place (attention <-> shortcut, or
    the embedding rate used elsewhere / another rate used for the embeddings).
    """
    other = {"attn": "shortcut", "shortcut": "attn", "emb": "attn"}[place]

    def dropped(where: str) -> Callable[[State, torch.Tensor], torch.Tensor]:
        return lambda sd, idx: gpt(sd, idx, num_heads, **{f"{where}_dropped": True})

    return _compute({
        "ch04_dropout_rate_ignored": lambda sd, idx: gpt(sd, idx, num_heads),
        "ch04_dropout_rates_swapped": dropped(other),
    }, as_ids=True)


@torch.no_grad()
def greedy(model: torch.nn.Module, idx: torch.Tensor, max_new_tokens: int, context_size: int, *,
           crop: bool = True, position: int = -1) -> torch.Tensor:
    """generate_text_simple with switches: ``crop=False`` feeds the whole sequence, ``position``
    picks which position's logits choose the next token."""
    for _ in range(max_new_tokens):
        cond = idx[:, -context_size:] if crop else idx
        logits = model(cond)[:, position, :]
        idx = torch.cat((idx, torch.argmax(logits, dim=-1, keepdim=True)), dim=1)
    return idx
