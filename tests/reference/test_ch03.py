"""Chapter 3: attention modules. Seeded numbers come from BOOK_FACTS.md."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import IMPLS, load

# "Your journey starts with one step", 3-dimensional embeddings (section 3.3).
INPUTS = torch.tensor([[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
                       [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]])
BATCH = torch.stack((INPUTS, INPUTS), dim=0)  # (2, 6, 3)
ATOL = 5e-5  # the book prints 4 decimals


def close(t: torch.Tensor, expected: list[float] | list[list[float]]) -> bool:
    return torch.allclose(t.detach(), torch.tensor(expected), atol=ATOL)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------------
# Self-attention v1 / v2 (section 3.4)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_self_attention_v1_book_numbers(impl: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(123)
    sa = ch03.SelfAttention_v1(3, 2)
    assert [name for name, _ in sa.named_parameters()] == ["W_query", "W_key", "W_value"]
    assert all(isinstance(p, nn.Parameter) and p.shape == (3, 2) for p in sa.parameters())
    out = sa(INPUTS)
    assert out.shape == (6, 2)
    assert close(out[0], [0.2996, 0.8053]) and close(out[1], [0.3061, 0.8210])


@pytest.mark.parametrize("impl", IMPLS)
def test_self_attention_v1_reduces_to_simplified_attention(impl: str) -> None:
    # With W_query = W_key = d**0.25 * I the sqrt(d) scaling cancels, and W_value = I returns the
    # inputs: the module computes section 3.3's attention without trainable weights.
    ch03 = load(impl, "ch03")
    sa = ch03.SelfAttention_v1(3, 3)
    with torch.no_grad():
        sa.W_query.copy_(torch.eye(3) * 3 ** 0.25)
        sa.W_key.copy_(torch.eye(3) * 3 ** 0.25)
        sa.W_value.copy_(torch.eye(3))
    scores = INPUTS @ INPUTS[1]
    assert close(scores, [0.9544, 1.4950, 1.4754, 0.8434, 0.7070, 1.0865])
    assert close(torch.softmax(scores, dim=0), [0.1385, 0.2379, 0.2333, 0.1240, 0.1082, 0.1581])
    assert close(sa(INPUTS)[1], [0.4419, 0.6515, 0.5683])


@pytest.mark.parametrize("impl", IMPLS)
def test_self_attention_v2_book_numbers(impl: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(789)
    sa = ch03.SelfAttention_v2(3, 2)
    assert [name for name, _ in sa.named_parameters()] == [
        "W_query.weight", "W_key.weight", "W_value.weight"]
    out = sa(INPUTS)
    assert out.shape == (6, 2)
    assert close(out[0], [-0.0739, 0.0713]) and close(out[1], [-0.0748, 0.0703])
    biased = ch03.SelfAttention_v2(3, 2, qkv_bias=True)
    assert n_params(biased) == 3 * (3 * 2 + 2)


@pytest.mark.parametrize("impl", IMPLS)
def test_self_attention_rows_are_convex_combinations(impl: str) -> None:
    # Each context vector is a weighted average of the value vectors: inside their bounding box.
    ch03 = load(impl, "ch03")
    torch.manual_seed(1)
    sa = ch03.SelfAttention_v2(3, 4)
    out = sa(INPUTS)
    values = sa.W_value(INPUTS)
    assert torch.all(out <= values.max(dim=0).values + 1e-6)
    assert torch.all(out >= values.min(dim=0).values - 1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_3_1(impl: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(123)
    sa_v2 = ch03.SelfAttention_v2(3, 2)
    sa_v1 = ch03.SelfAttention_v1(3, 2)
    before = [id(p) for p in sa_v1.parameters()]
    assert ch03.exercise_3_1_copy_weights(sa_v1, sa_v2) is None
    assert [id(p) for p in sa_v1.parameters()] == before  # in place
    out = sa_v1(INPUTS)
    assert close(out[0], [-0.5337, -0.1051]) and close(out[-1], [-0.5299, -0.1081])
    assert torch.allclose(out, sa_v2(INPUTS), atol=1e-6)
    assert torch.equal(sa_v1.W_key.detach(), sa_v2.W_key.weight.detach().T)


# ------------------------------------------------------------------------------------------------
# Causal attention (section 3.5)
# ------------------------------------------------------------------------------------------------


def _make(ch03: object, kind: str, d_in: int, d_out: int, ctx: int, dropout: float,
          heads: int = 2) -> nn.Module:
    if kind == "CausalAttention":
        return ch03.CausalAttention(d_in, d_out, ctx, dropout)  # type: ignore[attr-defined,no-any-return]
    return getattr(ch03, kind)(d_in, d_out, ctx, dropout, num_heads=heads)  # type: ignore[no-any-return]


CAUSAL = ("CausalAttention", "MultiHeadAttentionWrapper", "MultiHeadAttention")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", CAUSAL)
def test_causal_future_tokens_do_not_matter(impl: str, kind: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(0)
    att = _make(ch03, kind, 8, 4, 12, 0.0).eval()
    x = torch.randn(3, 10, 8)
    out = att(x)
    for t in range(10):
        y = x.clone()
        y[:, t + 1:] = torch.randn_like(y[:, t + 1:])
        out_y = att(y)
        assert torch.allclose(out_y[:, : t + 1], out[:, : t + 1], atol=1e-6)
        if t < 9:
            assert not torch.allclose(out_y[:, t + 1:], out[:, t + 1:], atol=1e-4)
    # The first token can only attend to itself.
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", CAUSAL)
def test_shorter_inputs_use_the_top_left_of_the_mask(impl: str, kind: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(0)
    att = _make(ch03, kind, 8, 4, 16, 0.0).eval()
    x = torch.randn(2, 16, 8)
    full = att(x)
    for n in (1, 5, 15):
        assert torch.allclose(att(x[:, :n]), full[:, :n], atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_causal_attention_mask_buffer(impl: str) -> None:
    ch03 = load(impl, "ch03")
    for att in (ch03.CausalAttention(3, 2, 6, 0.0), ch03.MultiHeadAttention(3, 2, 6, 0.0, 2)):
        assert "mask" in dict(att.named_buffers())
        assert "mask" in att.state_dict()
        assert "mask" not in dict(att.named_parameters())
        assert torch.equal(att.mask.bool(), torch.ones(6, 6).triu(1).bool())
        att.to(torch.float64)
        assert att.mask.dtype == torch.float64  # moves with the module


@pytest.mark.parametrize("impl", IMPLS)
def test_causal_attention_weights_match_manual(impl: str) -> None:
    # Recompute the causal attention of one CausalAttention by hand from its own projections.
    ch03 = load(impl, "ch03")
    torch.manual_seed(123)
    ca = ch03.CausalAttention(3, 2, 6, 0.0)
    assert [name for name, _ in ca.named_parameters()] == [
        "W_query.weight", "W_key.weight", "W_value.weight"]
    out = ca(BATCH)
    assert out.shape == (2, 6, 2)
    q, k, v = ca.W_query(INPUTS), ca.W_key(INPUTS), ca.W_value(INPUTS)
    for t in range(6):
        w = torch.softmax(q[t] @ k[: t + 1].T / 2 ** 0.5, dim=-1)
        assert torch.allclose(out[0, t], w @ v[: t + 1], atol=1e-6)
    assert torch.allclose(out[0], out[1])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", CAUSAL)
def test_dropout_only_in_training(impl: str, kind: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(0)
    att = _make(ch03, kind, 8, 4, 12, 0.5)
    torch.manual_seed(0)
    no_drop = _make(ch03, kind, 8, 4, 12, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(att.state_dict().values(),
                                                  no_drop.state_dict().values()))
    x = torch.randn(2, 12, 8)
    att.eval()
    with torch.no_grad():
        assert torch.equal(att(x), att(x))
        assert torch.allclose(att(x), no_drop(x), atol=1e-6)
        att.train()
        torch.manual_seed(1)
        a = att(x)
        torch.manual_seed(2)
        b = att(x)
    assert not torch.allclose(a, b)
    assert not torch.allclose(a, no_drop(x).detach())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", CAUSAL)
def test_gradients_reach_every_parameter(impl: str, kind: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(0)
    att = _make(ch03, kind, 8, 4, 12, 0.1)
    x = torch.randn(2, 7, 8, requires_grad=True)
    att(x).pow(2).sum().backward()
    for name, p in att.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", CAUSAL)
def test_tiny_attention_overfits(impl: str, kind: str) -> None:
    # Plain gradient descent on one fixed batch drives the loss well down: the module trains.
    # (Updated by hand: torch.optim's first step imports torch._dynamo, seconds on a busy CPU.)
    ch03 = load(impl, "ch03")
    torch.manual_seed(0)
    att = _make(ch03, kind, 8, 4, 12, 0.0)
    x = torch.randn(4, 6, 8)
    target = torch.randn(4, 6, att(x).shape[-1])
    losses = []
    for _ in range(40):
        att.zero_grad()
        loss = nn.functional.mse_loss(att(x), target)
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            for p in att.parameters():
                p -= 0.5 * p.grad
    assert losses[-1] < 0.8 * losses[0]


# ------------------------------------------------------------------------------------------------
# Multi-head attention (section 3.6)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_wrapper_book_numbers(impl: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(123)
    mha = ch03.MultiHeadAttentionWrapper(3, 2, 6, 0.0, num_heads=2)
    assert isinstance(mha.heads, nn.ModuleList) and len(mha.heads) == 2
    assert all(isinstance(h, ch03.CausalAttention) for h in mha.heads)
    out = mha(BATCH)
    assert out.shape == (2, 6, 4)
    assert close(out[0, 0], [-0.4519, 0.2216, 0.4772, 0.1063])
    # Concatenation: the first two columns are the first head's output.
    assert torch.allclose(out[..., :2], mha.heads[0](BATCH))
    assert torch.allclose(out[..., 2:], mha.heads[1](BATCH))


@pytest.mark.parametrize("impl", IMPLS)
def test_multihead_attention_book_numbers(impl: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(123)
    mha = ch03.MultiHeadAttention(3, 2, 6, 0.0, num_heads=2)
    assert (mha.d_out, mha.num_heads, mha.head_dim) == (2, 2, 1)
    assert [name for name, _ in mha.named_parameters()] == [
        "W_query.weight", "W_key.weight", "W_value.weight", "out_proj.weight", "out_proj.bias"]
    assert isinstance(mha.dropout, nn.Dropout)
    out = mha(BATCH)
    assert out.shape == (2, 6, 2)
    assert close(out[0, 0], [0.3190, 0.4858]) and close(out[0, 5], [0.2575, 0.4028])


@pytest.mark.parametrize("impl", IMPLS)
def test_multihead_attention_equals_heads_then_out_proj(impl: str) -> None:
    # MHA with weight splits == a wrapper of heads holding row slices of the same weights,
    # followed by out_proj.
    ch03 = load(impl, "ch03")
    torch.manual_seed(0)
    d_in, d_out, heads, ctx = 8, 12, 3, 10
    mha = ch03.MultiHeadAttention(d_in, d_out, ctx, 0.0, num_heads=heads, qkv_bias=True).eval()
    wrapper = ch03.MultiHeadAttentionWrapper(d_in, d_out // heads, ctx, 0.0, num_heads=heads,
                                             qkv_bias=True).eval()
    hd = d_out // heads
    with torch.no_grad():
        for h, head in enumerate(wrapper.heads):
            for name in ("W_query", "W_key", "W_value"):
                src, dst = getattr(mha, name), getattr(head, name)
                dst.weight.copy_(src.weight[h * hd:(h + 1) * hd])
                dst.bias.copy_(src.bias[h * hd:(h + 1) * hd])
    x = torch.randn(2, 7, d_in)
    assert torch.allclose(mha(x), mha.out_proj(wrapper(x)), atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_multihead_attention_shapes_and_counts(impl: str) -> None:
    ch03 = load(impl, "ch03")
    mha = ch03.MultiHeadAttention(32, 16, 16, 0.0, num_heads=4)
    assert mha(torch.randn(3, 9, 32)).shape == (3, 9, 16)
    assert n_params(mha) == 3 * 32 * 16 + 16 * 16 + 16
    assert n_params(ch03.MultiHeadAttention(32, 16, 16, 0.0, 4, qkv_bias=True)) == (
        3 * (32 * 16 + 16) + 16 * 16 + 16)
    wrapper = ch03.MultiHeadAttentionWrapper(32, 16, 16, 0.0, num_heads=4)
    assert wrapper(torch.randn(3, 9, 32)).shape == (3, 9, 64)
    assert n_params(wrapper) == 4 * 3 * 32 * 16
    with pytest.raises((ValueError, AssertionError)):
        ch03.MultiHeadAttention(32, 10, 16, 0.0, num_heads=4)


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_3_2(impl: str) -> None:
    ch03 = load(impl, "ch03")
    torch.manual_seed(123)
    mha = ch03.exercise_3_2_wrapper(3, 6)
    assert isinstance(mha, ch03.MultiHeadAttentionWrapper)
    assert len(mha.heads) == 2
    mha.train()  # no dropout, so training mode is deterministic too
    out = mha(BATCH)
    assert out.shape == (2, 6, 2)
    assert torch.equal(out, mha(BATCH))
    assert mha(torch.randn(1, 4, 3)).shape == (1, 4, 2)
    other = ch03.exercise_3_2_wrapper(5, 9)
    assert other(torch.randn(2, 9, 5)).shape == (2, 9, 2)


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_3_3(impl: str) -> None:
    ch03 = load(impl, "ch03")
    with torch.device("meta"):
        mha = ch03.exercise_3_3_gpt2_attention()
    assert isinstance(mha, ch03.MultiHeadAttention)
    assert n_params(mha) == 2_360_064
    assert (mha.d_out, mha.num_heads, mha.head_dim) == (768, 12, 64)
    assert mha.mask.shape == (1024, 1024)
    assert mha.W_query.in_features == 768 and mha.W_query.bias is None
    assert mha.dropout.p == 0.0
    with torch.device("meta"):
        assert mha(torch.empty(2, 1024, 768)).shape == (2, 1024, 768)
