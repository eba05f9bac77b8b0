"""Appendix E (LoRA): the reference and the model answers pass the same checks."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import IMPLS, load


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("impl", IMPLS)
def test_lora_layer_init(impl: str) -> None:
    mod = load(impl, "appendix_e")
    torch.manual_seed(123)
    layer = mod.LoRALayer(10, 6, rank=4, alpha=8)
    assert layer.A.shape == (10, 4) and layer.B.shape == (4, 6)
    assert isinstance(layer.A, torch.nn.Parameter) and isinstance(layer.B, torch.nn.Parameter)
    assert torch.count_nonzero(layer.B) == 0
    # kaiming_uniform_(a=sqrt(5)) on an (in_dim, rank) tensor: the same RNG draws as the book
    torch.manual_seed(123)
    want = torch.empty(10, 4)
    torch.nn.init.kaiming_uniform_(want, a=math.sqrt(5))
    assert torch.equal(layer.A.detach(), want)
    assert layer.alpha == 8 and layer.rank == 4
    assert _trainable(layer) == 10 * 4 + 4 * 6


@pytest.mark.parametrize("impl", IMPLS)
def test_lora_layer_scales_by_alpha_over_rank(impl: str) -> None:
    """rank > 1 tells the repository's alpha / rank apart from the printed book's alpha."""
    mod = load(impl, "appendix_e")
    torch.manual_seed(0)
    layer = mod.LoRALayer(5, 3, rank=4, alpha=2.0)
    with torch.no_grad():
        layer.B.copy_(torch.randn(4, 3))
    x = torch.randn(2, 7, 5)
    out = layer(x)
    assert out.shape == (2, 7, 3)
    expected = (2.0 / 4) * (x @ layer.A.detach() @ layer.B.detach())
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, 2.0 * (x @ layer.A.detach() @ layer.B.detach()), atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_linear_with_lora_starts_as_the_plain_linear(impl: str) -> None:
    mod = load(impl, "appendix_e")
    torch.manual_seed(123)
    linear = torch.nn.Linear(10, 2)
    x = torch.randn(1, 10)
    before = linear(x)
    wrapped = mod.LinearWithLoRA(linear, rank=2, alpha=4)
    assert wrapped.linear is linear
    assert isinstance(wrapped.lora, mod.LoRALayer)
    assert wrapped.lora.A.shape == (10, 2) and wrapped.lora.B.shape == (2, 2)
    assert torch.equal(wrapped(x), before)
    # once B is non-zero the update is added on top of the linear output
    with torch.no_grad():
        wrapped.lora.B.fill_(0.5)
    assert torch.allclose(wrapped(x), before + wrapped.lora(x))
    assert not torch.allclose(wrapped(x), before)


@pytest.mark.parametrize("impl", IMPLS)
def test_linear_with_lora_follows_the_wrapped_dtype(impl: str) -> None:
    mod = load(impl, "appendix_e")
    linear = torch.nn.Linear(4, 3).double()
    wrapped = mod.LinearWithLoRA(linear, rank=2, alpha=1)
    assert wrapped.lora.A.dtype == torch.float64
    x = torch.randn(2, 4, dtype=torch.float64)
    assert torch.equal(wrapped(x), linear(x))


class _Nested(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(11, 8)
        self.body = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.GELU(),
            torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.LayerNorm(16)),
        )
        self.head = torch.nn.Linear(16, 3, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.emb(ids)))


@pytest.mark.parametrize("impl", IMPLS)
def test_replace_linear_with_lora_recursive_in_place(impl: str) -> None:
    mod = load(impl, "appendix_e")
    torch.manual_seed(1)
    model = _Nested()
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    before = model(ids)
    originals = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert mod.replace_linear_with_lora(model, rank=2, alpha=2) is None
    wrapped = [m for m in model.modules() if isinstance(m, mod.LinearWithLoRA)]
    assert len(wrapped) == 3
    assert [w.linear for w in wrapped] == originals
    assert isinstance(model.body[2][0], mod.LinearWithLoRA)
    assert isinstance(model.emb, torch.nn.Embedding)  # only Linear layers are touched
    assert torch.equal(model(ids), before)
    # applying it twice does not wrap the wrapped layers again
    mod.replace_linear_with_lora(model, rank=2, alpha=2)
    assert len([m for m in model.modules() if isinstance(m, mod.LinearWithLoRA)]) == 3


@pytest.mark.parametrize("impl", IMPLS)
def test_lora_training_leaves_frozen_weights_unchanged(impl: str) -> None:
    mod = load(impl, "appendix_e")
    torch.manual_seed(2)
    model = _Nested()
    for p in model.parameters():
        p.requires_grad = False
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    mod.replace_linear_with_lora(model, rank=4, alpha=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora.A", "lora.B")) for n in trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.tensor([[1, 2, 3, 4]])
    loss = model(ids).pow(2).mean() + model(ids).sum()
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    for k, v in frozen.items():
        new_key = k
        if k not in after:  # a wrapped Linear's weight now lives under ".linear."
            head, _, leaf = k.rpartition(".")
            new_key = f"{head}.linear.{leaf}"
        assert torch.equal(after[new_key], v), k
    assert torch.count_nonzero(model.head.lora.B) > 0  # the LoRA update did train


def _gpt_with_lora_counts(impl: str, cfg: dict, classifier: bool) -> tuple[int, int]:
    """Trainable parameters before and after LoRA (rank 16, alpha 16), built on the meta device."""
    ch04 = load("reference", "ch04")
    mod = load(impl, "appendix_e")
    with torch.device("meta"):
        model = ch04.GPTModel(cfg)
        if classifier:
            model.out_head = torch.nn.Linear(cfg["emb_dim"], 2)
        before = _trainable(model)
        for p in model.parameters():
            p.requires_grad = False
        mod.replace_linear_with_lora(model, rank=16, alpha=16)
    return before, _trainable(model)


@pytest.mark.parametrize("impl", IMPLS)
def test_lora_counts_on_124m_classifier(impl: str) -> None:
    ch04 = load("reference", "ch04")
    cfg = {**ch04.GPT_CONFIG_124M, "qkv_bias": True}
    assert _gpt_with_lora_counts(impl, cfg, classifier=True) == (124_441_346, 2_666_528)


@pytest.mark.parametrize("impl", IMPLS)
def test_lora_counts_on_355m_model(impl: str) -> None:
    """Exercise 7.4's numbers: gpt2-medium with qkv_bias, LoRA rank 16."""
    ch04 = load("reference", "ch04")
    cfg = {**ch04.GPT_CONFIG_124M, "qkv_bias": True, "emb_dim": 1024, "n_layers": 24, "n_heads": 16}
    assert _gpt_with_lora_counts(impl, cfg, classifier=False) == (406_286_336, 7_898_384)
