"""Chapter 5 (pretraining): the reference and the model answers pass the same checks.

Book numbers come from BOOK_FACTS.md. The 124M model with a 256-token context is built once per
implementation; everything that trains uses a tiny configuration.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiktoken
import torch

from tests.helpers import IMPLS, load
from tests.helpers import TINY_CFG as TINY


BOOK_SENTENCE = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
BOOK_SENTENCE_IDS = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114,
                     286, 617, 34680, 27271, 13]
EX_5_1_LOGITS = torch.tensor([4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79])


def _tiny_model(impl: str, seed: int = 123, **changes: Any) -> Any:
    ch04 = load(impl, "ch04")
    torch.manual_seed(seed)
    return ch04.GPTModel({**TINY, **changes})


class FixedLogits(torch.nn.Module):
    """A stand-in model: every position of row r gets the logits ``rows[r]``."""

    def __init__(self, rows: torch.Tensor) -> None:
        super().__init__()
        self.rows = rows

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.rows[:, None, :].expand(idx.shape[0], idx.shape[1], -1).clone()


class Counter(torch.nn.Module):
    """A stand-in model whose greedy next token is (last token + 1) mod vocab."""

    def __init__(self, vocab: int = 20) -> None:
        super().__init__()
        self.vocab = vocab

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot((idx + 1) % self.vocab, self.vocab).float() * 10


# ---- 124M model, 256-token context (book section 5.1) -----------------------------------------


_MODELS_256: dict[str, Any] = {}


def _model_256(impl: str) -> Any:
    """The book's chapter 5 model (124M, context 256, seed 123, eval mode), built once per impl."""
    if impl not in _MODELS_256:
        ch04 = load(impl, "ch04")
        torch.manual_seed(123)
        _MODELS_256[impl] = ch04.GPTModel({**ch04.GPT_CONFIG_124M, "context_length": 256}).eval()
    return _MODELS_256[impl]


@pytest.mark.parametrize("impl", IMPLS)
def test_book_loss_and_perplexity(impl: str) -> None:
    ch05 = load(impl, "ch05")
    model = _model_256(impl)
    inputs = torch.tensor([[16833, 3626, 6100], [40, 1107, 588]])
    targets = torch.tensor([[3626, 6100, 345], [1107, 588, 11311]])
    with torch.no_grad():
        loss = ch05.calc_loss_batch(inputs, targets, model, "cpu")
    assert loss.shape == ()
    assert loss.item() == pytest.approx(10.7940, abs=1e-4)
    assert math.exp(loss.item()) == pytest.approx(48725.8, rel=1e-3)


@pytest.mark.slow
def test_exercise_5_5_losses_on_the_verdict(shared_data: Path) -> None:
    """The book's initial losses on the-verdict.txt (10-60 s on two CPU cores, so reference only;
    the model answer is checked against the same computation on a small model below)."""
    from reference import ch05

    model = _model_256("reference")
    text = (shared_data / "the-verdict.txt").read_text(encoding="utf-8")
    train_loss, val_loss = ch05.exercise_5_5_losses(model, text, context_length=256, device="cpu")
    assert train_loss == pytest.approx(10.98758, abs=1e-4)
    assert val_loss == pytest.approx(10.98111, abs=1e-4)
    assert not model.training


def _synthetic_text(n_words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    words = ["the", "model", "reads", "every", "token", "and", "learns", "to", "predict", "next", "one",
             "quietly", "while", "Jack", "painted", "sunlit", "terraces", "."]
    return " ".join(rng.choice(words, size=n_words))


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_5_5_losses(impl: str) -> None:
    ch04, ch05 = load(impl, "ch04"), load(impl, "ch05")
    torch.manual_seed(32)
    cfg = {**ch04.GPT_CONFIG_124M, "context_length": 8, "emb_dim": 8, "n_heads": 2, "n_layers": 1}
    model = ch04.GPTModel(cfg).train()
    text = _synthetic_text(300, seed=1)
    train_loss, val_loss = ch05.exercise_5_5_losses(model, text, context_length=8, device="cpu")
    assert model.training  # the caller's mode is left as it was

    # The same figure computed by hand: split the characters, cut stride = length windows,
    # keep full batches of 2 for training and every batch for validation.
    tokenizer = tiktoken.get_encoding("gpt2")
    split = int(0.9 * len(text))

    def windows(part: str) -> list[tuple[list[int], list[int]]]:
        ids = tokenizer.encode(part, allowed_special={"<|endoftext|>"})
        return [(ids[i:i + 8], ids[i + 1:i + 9]) for i in range(0, len(ids) - 8, 8)]

    def mean_batch_loss(pairs: list[tuple[list[int], list[int]]], drop_last: bool) -> float:
        groups = [pairs[i:i + 2] for i in range(0, len(pairs), 2)]
        if drop_last:
            groups = [g for g in groups if len(g) == 2]
        model.eval()
        with torch.no_grad():
            losses = [torch.nn.functional.cross_entropy(
                model(torch.tensor([x for x, _ in g])).flatten(0, 1),
                torch.tensor([y for _, y in g]).flatten()).item() for g in groups]
        return sum(losses) / len(losses)

    assert train_loss == pytest.approx(mean_batch_loss(windows(text[:split]), drop_last=True), rel=1e-5)
    assert val_loss == pytest.approx(mean_batch_loss(windows(text[split:]), drop_last=False), rel=1e-5)


# ---- Text <-> ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_text_token_ids_round_trip(impl: str) -> None:
    ch05 = load(impl, "ch05")
    tokenizer = tiktoken.get_encoding("gpt2")
    ids = ch05.text_to_token_ids(BOOK_SENTENCE, tokenizer)
    assert ids.shape == (1, 20) and ids.dtype == torch.long
    assert ids.tolist() == [BOOK_SENTENCE_IDS]
    assert ch05.token_ids_to_text(ids, tokenizer) == BOOK_SENTENCE


# ---- Losses ------------------------------------------------------------------------------------


def _batches(n: int, batch: int = 2, length: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        tokens = torch.randint(0, 97, (batch, length + 1), generator=g)
        out.append((tokens[:, :-1], tokens[:, 1:]))
    return out


@pytest.mark.parametrize("impl", IMPLS)
def test_calc_loss_batch_is_cross_entropy(impl: str) -> None:
    ch05 = load(impl, "ch05")
    model = _tiny_model(impl).eval()
    (inputs, targets), = _batches(1, batch=3)
    loss = ch05.calc_loss_batch(inputs, targets, model, torch.device("cpu"))
    logits = model(inputs)
    want = -torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).mean()
    assert torch.allclose(loss, want, atol=1e-5)
    loss.backward()
    assert model.out_head.weight.grad is not None


@pytest.mark.parametrize("impl", IMPLS)
def test_calc_loss_loader(impl: str) -> None:
    ch05 = load(impl, "ch05")
    model = _tiny_model(impl).eval()
    batches = _batches(4)
    with torch.no_grad():
        each = [ch05.calc_loss_batch(x, y, model, "cpu").item() for x, y in batches]
        assert ch05.calc_loss_loader(batches, model, "cpu") == pytest.approx(sum(each) / 4, rel=1e-6)
        assert ch05.calc_loss_loader(batches, model, "cpu", num_batches=2) == pytest.approx(
            sum(each[:2]) / 2, rel=1e-6)
        # More batches than the loader has: all of them.
        assert ch05.calc_loss_loader(batches, model, "cpu", num_batches=10) == pytest.approx(
            sum(each) / 4, rel=1e-6)
        assert math.isnan(ch05.calc_loss_loader([], model, "cpu"))


@pytest.mark.parametrize("impl", IMPLS)
def test_evaluate_model_uses_eval_mode_and_restores_train_mode(impl: str) -> None:
    ch05 = load(impl, "ch05")
    model = _tiny_model(impl, drop_rate=0.5)
    train, val = _batches(3, seed=1), _batches(2, seed=2)
    model.train()
    train_loss, val_loss = ch05.evaluate_model(model, train, val, "cpu", eval_iter=2)
    assert model.training
    model.eval()
    with torch.no_grad():
        want_train = sum(ch05.calc_loss_batch(x, y, model, "cpu").item() for x, y in train[:2]) / 2
        want_val = sum(ch05.calc_loss_batch(x, y, model, "cpu").item() for x, y in val[:2]) / 2
    assert train_loss == pytest.approx(want_train, rel=1e-6)
    assert val_loss == pytest.approx(want_val, rel=1e-6)
    assert all(p.grad is None for p in model.parameters())


# ---- Training ----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_train_model_simple_overfits_one_batch(impl: str) -> None:
    ch05 = load(impl, "ch05")
    model = _tiny_model(impl, drop_rate=0.1)
    train = _batches(1, batch=2, length=12, seed=3)
    val = _batches(1, batch=2, length=12, seed=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    train_losses, val_losses, tokens = ch05.train_model_simple(
        model, train, val, optimizer, "cpu", num_epochs=40, eval_freq=5, eval_iter=1,
        start_context="Every effort moves you", tokenizer=tiktoken.get_encoding("gpt2"))
    # Steps 0, 5, ..., 35 are evaluated; 24 input tokens per step.
    assert len(train_losses) == len(val_losses) == len(tokens) == 8
    assert tokens == [24 * (step + 1) for step in range(0, 40, 5)]
    assert train_losses[-1] < 0.2 < math.log(97) - 1 < train_losses[0]
    assert val_losses[-1] > train_losses[-1]  # it memorized the training batch only
    assert model.training


@pytest.mark.parametrize("impl", IMPLS)
def test_train_model_simple_takes_one_step_per_batch(impl: str) -> None:
    """The loop's updates equal a hand-written AdamW loop over the same batches."""
    ch05 = load(impl, "ch05")
    batches = _batches(3, seed=5)
    model = _tiny_model(impl, seed=9)
    twin = _tiny_model(impl, seed=10)
    twin.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ch05.train_model_simple(model, batches, batches[:1], opt, "cpu", num_epochs=2, eval_freq=100,
                            eval_iter=1, start_context="Hi", tokenizer=tiktoken.get_encoding("gpt2"))
    twin_opt = torch.optim.AdamW(twin.parameters(), lr=1e-3)
    twin.train()
    for _ in range(2):
        for x, y in batches:
            twin_opt.zero_grad()
            torch.nn.functional.cross_entropy(twin(x).flatten(0, 1), y.flatten()).backward()
            twin_opt.step()
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


# ---- Decoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_softmax_with_temperature(impl: str) -> None:
    ch05 = load(impl, "ch05")
    probas = ch05.softmax_with_temperature(EX_5_1_LOGITS, 1.0)
    assert torch.allclose(probas, torch.softmax(EX_5_1_LOGITS, dim=0))
    hot = ch05.softmax_with_temperature(EX_5_1_LOGITS, 5.0)
    cold = ch05.softmax_with_temperature(EX_5_1_LOGITS, 0.1)
    assert hot.sum().item() == pytest.approx(1.0) and cold.sum().item() == pytest.approx(1.0)
    assert hot[6].item() == pytest.approx(0.0430, abs=5e-5)  # p(pizza | T=5)
    assert cold.max() > probas.max() > hot.max()


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_5_1_sample_counts(impl: str) -> None:
    ch05 = load(impl, "ch05")
    assert ch05.exercise_5_1_sample_counts(EX_5_1_LOGITS, 1.0) == [73, 0, 0, 582, 2, 0, 0, 343, 0]
    cold = ch05.exercise_5_1_sample_counts(EX_5_1_LOGITS, 0.1)
    assert cold[3] == 985 and cold[7] == 15 and sum(cold) == 1000
    hot = ch05.exercise_5_1_sample_counts(EX_5_1_LOGITS, 5.0)
    assert hot == [165, 75, 42, 239, 71, 46, 32, 227, 103]
    assert len(ch05.exercise_5_1_sample_counts(EX_5_1_LOGITS, 1.0, num_samples=10, seed=1)) == 9


def test_top_k_book_numbers() -> None:
    values, positions = torch.topk(EX_5_1_LOGITS, 3)
    assert torch.allclose(values, torch.tensor([6.75, 6.28, 4.51]))
    assert positions.tolist() == [3, 7, 0]


@pytest.mark.parametrize("impl", IMPLS)
def test_generate_top_k_frequencies(impl: str) -> None:
    """Top-3 sampling at T=1 draws 0/3/7 with the book's probabilities 0.0615/0.5775/0.3610."""
    ch05 = load(impl, "ch05")
    rows = 4000
    model = FixedLogits(EX_5_1_LOGITS.expand(rows, -1))
    torch.manual_seed(123)
    out = ch05.generate(model, torch.zeros(rows, 1, dtype=torch.long), max_new_tokens=1, context_size=4,
                        temperature=1.0, top_k=3)
    assert out.shape == (rows, 2)
    freq = torch.bincount(out[:, 1], minlength=9).float() / rows
    assert set(out[:, 1].tolist()) <= {0, 3, 7}
    book = torch.tensor([0.0615, 0, 0, 0.5775, 0, 0, 0, 0.3610, 0])
    assert torch.allclose(freq, book, atol=0.03)


@pytest.mark.parametrize("impl", IMPLS)
def test_generate_top_k_threshold_is_per_row(impl: str) -> None:
    ch05 = load(impl, "ch05")
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 50, generator=g) * 3
    model = FixedLogits(logits)
    torch.manual_seed(1)
    out = ch05.generate(model, torch.zeros(5, 2, dtype=torch.long), max_new_tokens=30, context_size=8,
                        temperature=2.0, top_k=2)
    allowed = torch.topk(logits, 2).indices
    for row in range(5):
        assert set(out[row, 2:].tolist()) <= set(allowed[row].tolist())


@pytest.mark.parametrize("impl", IMPLS)
def test_generate_greedy_batch_equals_rows(impl: str) -> None:
    ch04, ch05 = load(impl, "ch04"), load(impl, "ch05")
    model = _tiny_model(impl, seed=11).eval()
    idx = torch.randint(0, 97, (4, 5), generator=torch.Generator().manual_seed(2))
    out = ch05.generate(model, idx, max_new_tokens=15, context_size=16)
    assert out.shape == (4, 20)
    assert torch.equal(out, ch04.generate_text_simple(model, idx, 15, 16))
    for row in range(4):
        assert torch.equal(ch05.generate(model, idx[row:row + 1], 15, 16), out[row:row + 1])
        assert torch.equal(ch05.generate(model, idx[row:row + 1], 15, 16, top_k=5), out[row:row + 1])


@pytest.mark.parametrize("impl", IMPLS)
def test_generate_sampling_batch_of_one_is_reproducible(impl: str) -> None:
    ch05 = load(impl, "ch05")
    model = _tiny_model(impl, seed=12).eval()
    idx = torch.tensor([[1, 2, 3]])
    torch.manual_seed(7)
    a = ch05.generate(model, idx, 10, 16, temperature=1.4, top_k=25)
    torch.manual_seed(7)
    b = ch05.generate(model, idx, 10, 16, temperature=1.4, top_k=25)
    assert torch.equal(a, b) and a.shape == (1, 13)


@pytest.mark.parametrize("impl", IMPLS)
def test_generate_eos(impl: str) -> None:
    ch05 = load(impl, "ch05")
    model = Counter(vocab=20)
    # Batch of one, as in the book: stop at eos without appending it.
    assert ch05.generate(model, torch.tensor([[5]]), 10, 4, eos_id=7).tolist() == [[5, 6]]
    assert ch05.generate(model, torch.tensor([[6]]), 10, 4, eos_id=7).tolist() == [[6]]
    # Without eos_id (or eos never reached) the full length is generated.
    assert ch05.generate(model, torch.tensor([[5]]), 4, 4).tolist() == [[5, 6, 7, 8, 9]]
    assert ch05.generate(model, torch.tensor([[5]]), 3, 4, eos_id=19).tolist() == [[5, 6, 7, 8]]
    # Batch > 1: row 0 finishes first and is padded with eos; the step that finishes the last
    # row is not appended.
    out = ch05.generate(model, torch.tensor([[5], [2]]), 10, 4, eos_id=7)
    assert out.tolist() == [[5, 6, 7, 7, 7], [2, 3, 4, 5, 6]]
    out = ch05.generate(model, torch.tensor([[5], [2]]), 3, 4, eos_id=7)
    assert out.tolist() == [[5, 6, 7, 7], [2, 3, 4, 5]]


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_5_2_settings(impl: str) -> None:
    ch05 = load(impl, "ch05")
    settings = ch05.exercise_5_2_settings()
    assert set(settings) == {"diverse", "conservative"}
    diverse, conservative = settings["diverse"], settings["conservative"]
    assert set(diverse) == set(conservative) == {"temperature", "top_k"}
    assert diverse["temperature"] > 1 and (diverse["top_k"] is None or diverse["top_k"] >= 50)
    assert 0 < conservative["temperature"] < 1 and conservative["top_k"] is not None
    assert 1 <= conservative["top_k"] <= 10
    model = _tiny_model(impl, seed=13).eval()
    for kwargs in settings.values():
        out = ch05.generate(model, torch.tensor([[1, 2]]), 5, 16, **kwargs)
        assert out.shape == (1, 7)


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_5_3_deterministic_settings(impl: str) -> None:
    ch04, ch05 = load(impl, "ch04"), load(impl, "ch05")
    settings = ch05.exercise_5_3_deterministic_settings()
    assert len(settings) >= 2
    model = _tiny_model(impl, seed=14).eval()
    idx = torch.tensor([[4, 8, 15]])
    greedy = ch04.generate_text_simple(model, idx, 12, 16)
    for i, kwargs in enumerate(settings):
        for seed in (0, 1):
            torch.manual_seed(seed + 10 * i)
            assert torch.equal(ch05.generate(model, idx, 12, 16, **kwargs), greedy), kwargs


# ---- Checkpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_checkpoint_round_trip(impl: str, tmp_path: Path) -> None:
    ch05 = load(impl, "ch05")
    batches = _batches(3, seed=6)
    model = _tiny_model(impl, seed=15)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    for x, y in batches[:2]:
        opt.zero_grad()
        ch05.calc_loss_batch(x, y, model, "cpu").backward()
        opt.step()
    path = tmp_path / "model_and_optimizer.pth"
    ch05.save_checkpoint(model, opt, path)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"model_state_dict", "optimizer_state_dict"}

    other = _tiny_model(impl, seed=16)
    other_opt = torch.optim.AdamW(other.parameters(), lr=1e-3, weight_decay=0.1)
    ch05.load_checkpoint(other, other_opt, path, map_location="cpu")
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    # One more identical step keeps them identical: the optimizer state came along.
    for m, o in ((model, opt), (other, other_opt)):
        o.zero_grad()
        ch05.calc_loss_batch(*batches[2], m, "cpu").backward()
        o.step()
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("drop_rate", [0.0, 0.1])
def test_exercise_5_4_resume_equals_uninterrupted(impl: str, drop_rate: float, tmp_path: Path) -> None:
    ch05 = load(impl, "ch05")
    cfg = {**TINY, "drop_rate": drop_rate}
    batches = _batches(5, seed=7)
    init = _tiny_model(impl, seed=17, drop_rate=drop_rate).state_dict()
    init = {k: v.clone() for k, v in init.items()}

    model = _tiny_model(impl, seed=18, drop_rate=drop_rate)
    model.load_state_dict(init)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)
    model.train()
    torch.manual_seed(99)
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()

    torch.manual_seed(99)
    path = tmp_path / "ckpt.pth"
    resumed = ch05.exercise_5_4_resume_training(cfg, init, batches, path, split=2)
    assert path.is_file()
    assert list(resumed) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.allclose(resumed[name], value, atol=1e-6), name
    assert not torch.equal(resumed["out_head.weight"], init["out_head.weight"])


# ---- Loading GPT-2 weights ---------------------------------------------------------------------


def _openai_params(model: Any, as_numpy: bool = True) -> dict[str, Any]:
    """The layout of the book's gpt_download.py, built from a model's own weights."""
    def conv(t: torch.Tensor) -> Any:
        t = t.detach().clone()
        return t.numpy() if as_numpy else t

    blocks = []
    for block in model.trf_blocks:
        att, ff = block.att, block.ff
        blocks.append({
            "attn": {
                "c_attn": {
                    "w": conv(torch.cat([att.W_query.weight.T, att.W_key.weight.T, att.W_value.weight.T], dim=1)),
                    "b": conv(torch.cat([att.W_query.bias, att.W_key.bias, att.W_value.bias])),
                },
                "c_proj": {"w": conv(att.out_proj.weight.T), "b": conv(att.out_proj.bias)},
            },
            "mlp": {
                "c_fc": {"w": conv(ff.layers[0].weight.T), "b": conv(ff.layers[0].bias)},
                "c_proj": {"w": conv(ff.layers[2].weight.T), "b": conv(ff.layers[2].bias)},
            },
            "ln_1": {"g": conv(block.norm1.scale), "b": conv(block.norm1.shift)},
            "ln_2": {"g": conv(block.norm2.scale), "b": conv(block.norm2.shift)},
        })
    return {
        "wte": conv(model.tok_emb.weight), "wpe": conv(model.pos_emb.weight),
        "g": conv(model.final_norm.scale), "b": conv(model.final_norm.shift), "blocks": blocks,
    }


def _tie(model: Any) -> Any:
    with torch.no_grad():
        model.out_head.weight.copy_(model.tok_emb.weight)
    return model


@pytest.mark.parametrize("impl", IMPLS)
def test_assign(impl: str) -> None:
    ch05 = load(impl, "ch05")
    left = torch.nn.Parameter(torch.zeros(2, 3))
    p = ch05.assign(left, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert isinstance(p, torch.nn.Parameter) and p.requires_grad
    assert p.dtype == torch.float32 and p.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert torch.equal(ch05.assign(left, torch.ones(2, 3)).detach(), torch.ones(2, 3))
    with pytest.raises(ValueError):
        ch05.assign(left, np.zeros((3, 2), dtype=np.float32))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("as_numpy", [True, False])
def test_load_weights_into_gpt_round_trip(impl: str, as_numpy: bool) -> None:
    ch05 = load(impl, "ch05")
    source = _tie(_tiny_model(impl, seed=19, qkv_bias=True)).eval()
    params = _openai_params(source, as_numpy=as_numpy)
    target = _tiny_model(impl, seed=20, qkv_bias=True)
    ch05.load_weights_into_gpt(target, params)
    target.eval()
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    idx = torch.randint(0, 97, (2, 9))
    assert torch.equal(source(idx), target(idx))
    # The loaded weights are trainable parameters.
    assert all(p.requires_grad for p in target.parameters())
    assert len(list(target.parameters())) == len(list(source.parameters()))


@pytest.mark.parametrize("impl", IMPLS)
def test_load_weights_into_gpt_rejects_a_wrong_shape(impl: str) -> None:
    ch05 = load(impl, "ch05")
    params = _openai_params(_tiny_model(impl, seed=21, qkv_bias=True))
    params["blocks"][1]["mlp"]["c_fc"]["w"] = params["blocks"][1]["mlp"]["c_fc"]["w"][:, :-1]
    with pytest.raises(ValueError):
        ch05.load_weights_into_gpt(_tiny_model(impl, seed=22, qkv_bias=True), params)
    wide = _openai_params(_tiny_model(impl, seed=23, qkv_bias=True, emb_dim=16))
    with pytest.raises(ValueError):
        ch05.load_weights_into_gpt(_tiny_model(impl, seed=24, qkv_bias=True), wide)


@pytest.mark.parametrize("impl", IMPLS)
def test_model_configs(impl: str) -> None:
    ch05 = load(impl, "ch05")
    assert ch05.model_configs == {
        "gpt2-small (124M)": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
        "gpt2-medium (355M)": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
        "gpt2-large (774M)": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
        "gpt2-xl (1558M)": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
    }


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_5_6_build_and_load(impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exercise 5.6 on a made-up tiny size (the real ones need downloaded weights)."""
    ch04, ch05 = load(impl, "ch04"), load(impl, "ch05")
    monkeypatch.setitem(ch05.model_configs, "tiny", {"emb_dim": 8, "n_layers": 2, "n_heads": 2})
    cfg = {**ch04.GPT_CONFIG_124M, "emb_dim": 8, "n_layers": 2, "n_heads": 2, "qkv_bias": True,
           "drop_rate": 0.0}
    torch.manual_seed(25)
    source = _tie(ch04.GPTModel(cfg)).eval()
    gpt = ch05.exercise_5_6_build_and_load("tiny", _openai_params(source))
    assert isinstance(gpt, ch04.GPTModel) and not gpt.training
    assert gpt.pos_emb.weight.shape == (1024, 8) and gpt.tok_emb.weight.shape == (50257, 8)
    assert gpt.trf_blocks[0].att.W_query.bias is not None
    assert gpt.drop_emb.p == 0.0
    idx = torch.tensor([[15496, 11, 314, 716]])
    assert torch.equal(gpt(idx), source(idx))


# ---- Reference only: Hugging Face layouts -------------------------------------------------------


def _hf_state_dict(model: Any, prefix: str = "", lm_head: bool = False) -> dict[str, torch.Tensor]:
    """A GPT2Model-style state_dict (Conv1D weights are (in, out)) built from a model's weights."""
    sd: dict[str, torch.Tensor] = {
        "wte.weight": model.tok_emb.weight, "wpe.weight": model.pos_emb.weight,
        "ln_f.weight": model.final_norm.scale, "ln_f.bias": model.final_norm.shift,
    }
    for i, block in enumerate(model.trf_blocks):
        att, ff = block.att, block.ff
        n = att.mask.shape[-1]
        sd.update({
            f"h.{i}.ln_1.weight": block.norm1.scale, f"h.{i}.ln_1.bias": block.norm1.shift,
            f"h.{i}.attn.bias": torch.tril(torch.ones(n, n)).view(1, 1, n, n),  # old HF mask buffer
            f"h.{i}.attn.c_attn.weight": torch.cat([att.W_query.weight.T, att.W_key.weight.T,
                                                    att.W_value.weight.T], dim=1),
            f"h.{i}.attn.c_attn.bias": torch.cat([att.W_query.bias, att.W_key.bias, att.W_value.bias]),
            f"h.{i}.attn.c_proj.weight": att.out_proj.weight.T, f"h.{i}.attn.c_proj.bias": att.out_proj.bias,
            f"h.{i}.ln_2.weight": block.norm2.scale, f"h.{i}.ln_2.bias": block.norm2.shift,
            f"h.{i}.mlp.c_fc.weight": ff.layers[0].weight.T, f"h.{i}.mlp.c_fc.bias": ff.layers[0].bias,
            f"h.{i}.mlp.c_proj.weight": ff.layers[2].weight.T, f"h.{i}.mlp.c_proj.bias": ff.layers[2].bias,
        })
    out = {prefix + k: v.detach().clone().contiguous() for k, v in sd.items()}
    if lm_head:
        out["lm_head.weight"] = model.out_head.weight.detach().clone()
    return out


@pytest.mark.parametrize("prefix,lm_head", [("", False), ("transformer.", True)])
def test_load_hf_gpt2_state_dict(prefix: str, lm_head: bool) -> None:
    from reference import ch05

    source = _tie(_tiny_model("reference", seed=26, qkv_bias=True)).eval()
    if lm_head:  # an untied head in the file wins over wte
        with torch.no_grad():
            source.out_head.weight.add_(0.5)
    target = _tiny_model("reference", seed=27, qkv_bias=True).eval()
    ch05.load_hf_gpt2_state_dict(target, _hf_state_dict(source, prefix, lm_head))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name


def test_load_gpt2_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from reference import ch05

    source = _tie(_tiny_model("reference", seed=28, qkv_bias=True)).eval()
    path = tmp_path / "model.safetensors"
    save_file(_hf_state_dict(source), str(path))
    target = _tiny_model("reference", seed=29, qkv_bias=True).eval()
    ch05.load_gpt2_safetensors(target, path)
    idx = torch.randint(0, 97, (1, 6))
    assert torch.equal(source(idx), target(idx))


def test_load_gpt2_safetensors_without_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from reference import ch05

    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install safetensors"):
        ch05.load_gpt2_safetensors(_tiny_model("reference", qkv_bias=True), tmp_path / "model.safetensors")


def test_reference_loader_explains_missing_qkv_bias() -> None:
    from reference import ch05

    params = _openai_params(_tiny_model("reference", seed=30, qkv_bias=True))
    with pytest.raises(ValueError, match="qkv_bias=True"):
        ch05.load_weights_into_gpt(_tiny_model("reference", seed=31, qkv_bias=False), params)


@pytest.mark.parametrize("impl", IMPLS)
def test_checkpoint_model_only(impl: str, tmp_path: Path) -> None:
    """Without an optimizer only the model's state is saved and restored."""
    ch05 = load(impl, "ch05")
    model = _tiny_model(impl, seed=33)
    path = tmp_path / "model.pth"
    ch05.save_checkpoint(model, None, path)
    assert set(torch.load(path, weights_only=True)) == {"model_state_dict"}
    other = _tiny_model(impl, seed=34)
    ch05.load_checkpoint(other, None, path)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_5_6_unknown_name(impl: str) -> None:
    ch05 = load(impl, "ch05")
    with pytest.raises((KeyError, ValueError)):
        ch05.exercise_5_6_build_and_load("gpt2-huge", {})


def test_reference_loader_checks_the_number_of_blocks() -> None:
    from reference import ch05

    params = _openai_params(_tiny_model("reference", seed=35, qkv_bias=True, n_layers=3))
    with pytest.raises(ValueError, match="3 blocks"):
        ch05.load_weights_into_gpt(_tiny_model("reference", seed=36, qkv_bias=True), params)
