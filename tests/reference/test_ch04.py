"""Chapter 4 (the GPT model): the reference and the model answers pass the same checks.

Book numbers come from BOOK_FACTS.md; parameter counts are taken on the meta device.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.helpers import IMPLS, load

TINY: dict[str, Any] = {
    "vocab_size": 97,
    "context_length": 16,
    "emb_dim": 32,
    "n_heads": 2,
    "n_layers": 2,
    "drop_rate": 0.1,
    "qkv_bias": False,
}

HELLO_I_AM = [15496, 11, 314, 716]
BOOK_GENERATED = [15496, 11, 314, 716, 27018, 24086, 47843, 30961, 42348, 7267, 49706, 43231, 47062, 34657]


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta_model(ch04: Any, cfg: dict[str, Any]) -> Any:
    with torch.device("meta"):
        return ch04.GPTModel(cfg)


@pytest.mark.parametrize("impl", IMPLS)
def test_config_124m(impl: str) -> None:
    ch04 = load(impl, "ch04")
    assert ch04.GPT_CONFIG_124M == {
        "vocab_size": 50257, "context_length": 1024, "emb_dim": 768, "n_heads": 12,
        "n_layers": 12, "drop_rate": 0.1, "qkv_bias": False,
    }


@pytest.mark.parametrize("impl", IMPLS)
def test_layer_norm_matches_torch(impl: str) -> None:
    ch04 = load(impl, "ch04")
    torch.manual_seed(123)
    ln = ch04.LayerNorm(emb_dim=5)
    assert ln.eps == 1e-5
    assert torch.equal(ln.scale.detach(), torch.ones(5)) and torch.equal(ln.shift.detach(), torch.zeros(5))
    x = torch.randn(2, 3, 5) * 4 + 2
    out = ln(x)
    assert out.shape == x.shape
    # Zero mean and unit (biased) variance per row, as in the book's demo.
    assert torch.allclose(out.mean(dim=-1), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(out.var(dim=-1, unbiased=False), torch.ones(2, 3), atol=1e-3)
    with torch.no_grad():
        ln.scale.copy_(torch.randn(5))
        ln.shift.copy_(torch.randn(5))
    want = torch.nn.functional.layer_norm(x, (5,), ln.scale, ln.shift, eps=1e-5)
    assert torch.allclose(ln(x), want, atol=1e-5)
    ln(x).sum().backward()
    assert ln.scale.grad is not None and ln.shift.grad is not None


@pytest.mark.parametrize("impl", IMPLS)
def test_gelu_is_the_tanh_approximation(impl: str) -> None:
    ch04 = load(impl, "ch04")
    x = torch.linspace(-3, 3, 100)
    out = ch04.GELU()(x)
    assert torch.allclose(out, torch.nn.functional.gelu(x, approximate="tanh"), atol=1e-6)
    # The exact (erf) GELU differs visibly from the tanh form somewhere on [-3, 3].
    assert not torch.allclose(out, torch.nn.functional.gelu(x), atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_feed_forward(impl: str) -> None:
    ch04 = load(impl, "ch04")
    ff = ch04.FeedForward(ch04.GPT_CONFIG_124M)
    assert isinstance(ff.layers, torch.nn.Sequential) and len(ff.layers) == 3
    assert isinstance(ff.layers[0], torch.nn.Linear) and ff.layers[0].weight.shape == (3072, 768)
    assert isinstance(ff.layers[1], ch04.GELU)
    assert isinstance(ff.layers[2], torch.nn.Linear) and ff.layers[2].weight.shape == (768, 3072)
    x = torch.rand(2, 3, 768)
    assert ff(x).shape == (2, 3, 768)


@pytest.mark.parametrize("impl", IMPLS)
def test_shortcut_gradients_match_the_book(impl: str) -> None:
    ch04 = load(impl, "ch04")
    layer_sizes = [3, 3, 3, 3, 3, 1]
    sample_input = torch.tensor([[1.0, 0.0, -1.0]])

    def mean_abs_grads(use_shortcut: bool) -> list[float]:
        torch.manual_seed(123)
        model = ch04.ExampleDeepNeuralNetwork(layer_sizes, use_shortcut=use_shortcut)
        assert isinstance(model.layers, torch.nn.ModuleList) and len(model.layers) == 5
        output = model(sample_input)
        loss = torch.nn.MSELoss()(output, torch.tensor([[0.0]]))
        loss.backward()
        return [layer[0].weight.grad.abs().mean().item() for layer in model.layers]

    without = mean_abs_grads(False)
    with_shortcut = mean_abs_grads(True)
    assert without == pytest.approx([0.000202, 0.000120, 0.000715, 0.001399, 0.005050], abs=5e-6)
    assert with_shortcut == pytest.approx([0.2217, 0.2069, 0.3290, 0.2666, 1.3259], abs=5e-4)


@pytest.mark.parametrize("impl", IMPLS)
def test_transformer_block_shape_and_names(impl: str) -> None:
    ch03, ch04 = load(impl, "ch03"), load(impl, "ch04")
    torch.manual_seed(123)
    block = ch04.TransformerBlock(ch04.GPT_CONFIG_124M)
    assert isinstance(block.att, ch03.MultiHeadAttention)
    assert isinstance(block.ff, ch04.FeedForward)
    assert isinstance(block.norm1, ch04.LayerNorm) and isinstance(block.norm2, ch04.LayerNorm)
    assert isinstance(block.drop_shortcut, torch.nn.Dropout) and block.drop_shortcut.p == 0.1
    assert [name for name, _ in block.named_children()] == ["att", "ff", "norm1", "norm2", "drop_shortcut"]
    x = torch.rand(2, 4, 768)
    assert block(x).shape == (2, 4, 768)


@pytest.mark.parametrize("impl", IMPLS)
def test_transformer_block_is_pre_norm_with_shortcuts(impl: str) -> None:
    ch04 = load(impl, "ch04")
    torch.manual_seed(0)
    block = ch04.TransformerBlock(TINY).eval()
    x = torch.randn(2, 5, 32)
    h = x + block.att(block.norm1(x))
    want = h + block.ff(block.norm2(h))
    assert torch.allclose(block(x), want, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_gpt_model_structure_and_forward(impl: str) -> None:
    ch04 = load(impl, "ch04")
    torch.manual_seed(123)
    model = ch04.GPTModel(TINY)
    assert [name for name, _ in model.named_children()] == [
        "tok_emb", "pos_emb", "drop_emb", "trf_blocks", "final_norm", "out_head"]
    assert isinstance(model.trf_blocks, torch.nn.Sequential) and len(model.trf_blocks) == 2
    assert model.out_head.bias is None
    assert model.tok_emb.weight.shape == (97, 32) and model.pos_emb.weight.shape == (16, 32)
    idx = torch.randint(0, 97, (3, 7))  # shorter than the context length
    logits = model(idx)
    assert logits.shape == (3, 7, 97)
    # Gradients reach every parameter.
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("impl", IMPLS)
def test_gpt_model_is_causal_and_deterministic_in_eval(impl: str) -> None:
    ch04 = load(impl, "ch04")
    torch.manual_seed(1)
    model = ch04.GPTModel(TINY).eval()
    idx = torch.randint(0, 97, (2, 10))
    out = model(idx)
    assert torch.equal(out, model(idx))  # dropout is off in eval mode
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 97
    out2 = model(changed)
    assert torch.allclose(out[:, :6], out2[:, :6], atol=1e-6)  # the past never sees the future
    assert not torch.allclose(out[:, 6:], out2[:, 6:])
    model.train()
    torch.manual_seed(2)
    a = model(idx)
    b = model(idx)
    assert not torch.equal(a, b)  # dropout is on in train mode


@pytest.mark.parametrize("impl", IMPLS)
def test_parameter_counts_124m(impl: str) -> None:
    ch04 = load(impl, "ch04")
    model = _meta_model(ch04, ch04.GPT_CONFIG_124M)
    total = _count(model)
    assert total == 163_009_536
    assert total - model.out_head.weight.numel() == 124_412_160
    assert total * 4 / 1024**2 == pytest.approx(621.83, abs=0.005)
    assert len(model.state_dict()) == 173  # includes each block's att.mask buffer


@pytest.mark.parametrize("impl", IMPLS)
def test_generate_text_simple_matches_the_book(impl: str) -> None:
    """The full 124M model, seeded as in the book, generates the book's token ids."""
    ch04 = load(impl, "ch04")
    torch.manual_seed(123)
    model = ch04.GPTModel(ch04.GPT_CONFIG_124M)
    model.eval()
    idx = torch.tensor([HELLO_I_AM])
    out = ch04.generate_text_simple(model, idx, max_new_tokens=10,
                                    context_size=ch04.GPT_CONFIG_124M["context_length"])
    assert out.tolist() == [BOOK_GENERATED]
    assert idx.tolist() == [HELLO_I_AM]  # the input is not modified


@pytest.mark.parametrize("impl", IMPLS)
def test_generate_text_simple_crops_and_handles_batches(impl: str) -> None:
    ch04 = load(impl, "ch04")
    torch.manual_seed(5)
    model = ch04.GPTModel(TINY).eval()
    idx = torch.randint(0, 97, (3, 14))
    out = ch04.generate_text_simple(model, idx, max_new_tokens=6, context_size=16)  # 20 > 16: cropped
    assert out.shape == (3, 20)
    assert torch.equal(out[:, :14], idx)
    for row in range(3):
        single = ch04.generate_text_simple(model, idx[row:row + 1], max_new_tokens=6, context_size=16)
        assert torch.equal(single, out[row:row + 1])
    # Each new token is the argmax of the logits for the (cropped) prefix.
    with torch.no_grad():
        want = model(out[:, 19 - 16:19])[:, -1, :].argmax(dim=-1)
    assert torch.equal(out[:, 19], want)
    assert ch04.generate_text_simple(model, idx, max_new_tokens=0, context_size=16).shape == (3, 14)


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_4_1_parameter_counts(impl: str) -> None:
    ch04 = load(impl, "ch04")
    counts = ch04.exercise_4_1_parameter_counts(ch04.GPT_CONFIG_124M)
    assert counts == {"feed_forward": 4_722_432, "attention": 2_360_064}
    with torch.device("meta"):
        block = ch04.TransformerBlock(ch04.GPT_CONFIG_124M)
    assert _count(block) == 7_085_568


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_4_2_configs_and_sizes(impl: str) -> None:
    ch04 = load(impl, "ch04")
    configs = ch04.exercise_4_2_model_configs()
    assert list(configs) == ["gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl"]
    shapes = {"gpt2-small": (768, 12, 12), "gpt2-medium": (1024, 24, 16), "gpt2-large": (1280, 36, 20),
              "gpt2-xl": (1600, 48, 25)}
    for name, (emb, layers, heads) in shapes.items():
        assert configs[name] == {**ch04.GPT_CONFIG_124M, "emb_dim": emb, "n_layers": layers, "n_heads": heads}

    book = {
        "gpt2-small": (163_009_536, 124_412_160, 621.83, 163_037_184),
        "gpt2-medium": (406_212_608, 354_749_440, 1549.58, 406_286_336),
        "gpt2-large": (838_220_800, 773_891_840, 3197.56, 838_359_040),
        "gpt2-xl": (1_637_792_000, 1_557_380_800, 6247.68, 1_638_022_400),
    }
    for name, (total, without_head, mb, total_with_bias) in book.items():
        size = ch04.exercise_4_2_model_size(configs[name])
        assert size["total_params"] == total
        assert size["params_without_out_head"] == without_head
        assert size["size_mb"] == pytest.approx(mb, abs=0.005)
        with_bias = ch04.exercise_4_2_model_size({**configs[name], "qkv_bias": True})
        assert with_bias["total_params"] == total_with_bias


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_4_3_separate_dropout(impl: str) -> None:
    ch04 = load(impl, "ch04")
    cfg = ch04.exercise_4_3_config()
    assert "drop_rate" not in cfg
    assert {k: v for k, v in cfg.items() if not k.startswith("drop_rate")} == {
        k: v for k, v in ch04.GPT_CONFIG_124M.items() if k != "drop_rate"}
    assert {cfg["drop_rate_emb"], cfg["drop_rate_attn"], cfg["drop_rate_shortcut"]} == {0.1}

    tiny = {k: v for k, v in TINY.items() if k != "drop_rate"}
    tiny.update(drop_rate_emb=0.2, drop_rate_attn=0.3, drop_rate_shortcut=0.4)
    torch.manual_seed(3)
    model = ch04.GPTModelSeparateDropout(tiny)
    assert model.drop_emb.p == 0.2
    for block in model.trf_blocks:
        assert isinstance(block, ch04.TransformerBlockSeparateDropout)
        assert block.att.dropout.p == 0.3
        assert block.drop_shortcut.p == 0.4

    # Same names and order: a GPTModel's state_dict loads into it and gives the same outputs.
    torch.manual_seed(4)
    plain = ch04.GPTModel(TINY).eval()
    assert list(plain.state_dict()) == list(model.state_dict())
    model.load_state_dict(plain.state_dict())
    model.eval()
    idx = torch.randint(0, 97, (2, 9))
    assert torch.allclose(model(idx), plain(idx), atol=1e-6)
    model.train()
    assert model(idx).shape == (2, 9, 97)

    with torch.device("meta"):
        assert _count(ch04.GPTModelSeparateDropout(cfg)) == 163_009_536
