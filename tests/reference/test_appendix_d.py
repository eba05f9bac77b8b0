"""Appendix D (warmup, cosine decay, clipping): the reference and the model answers pass the same checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tests.helpers import IMPLS, TINY_CFG, load

PEAK, INITIAL, MIN = 0.01, 3e-5, 1e-6


def _expected_lr(step: int, total: int, warmup: int) -> float:
    """The schedule written out from the book: linear warmup, then half a cosine."""
    if step < warmup:
        return INITIAL + step * (PEAK - INITIAL) / warmup
    return MIN + (PEAK - MIN) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


# ---- find_highest_gradient ------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_find_highest_gradient_is_the_signed_maximum(impl: str) -> None:
    mod = load(impl, "appendix_d")
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model[0].weight.grad = torch.tensor([[0.1, -5.0, 0.3], [0.2, 0.7, -1.0]])
    model[1].weight.grad = torch.tensor([[0.25, -0.5]])
    # biases have no gradient (None): skipped
    result = mod.find_highest_gradient(model)
    assert isinstance(result, float) and result == pytest.approx(0.7)
    model[0].weight.grad = -torch.ones(2, 3)
    model[1].weight.grad = torch.tensor([[-0.25, -9.0]])
    assert mod.find_highest_gradient(model) == pytest.approx(-0.25)  # not the largest |value|


@pytest.mark.parametrize("impl", IMPLS)
def test_find_highest_gradient_after_backward(impl: str) -> None:
    mod = load(impl, "appendix_d")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    model(torch.randn(5, 4)).pow(2).sum().backward()
    want = max(p.grad.max().item() for p in model.parameters())
    assert mod.find_highest_gradient(model) == pytest.approx(want)


@pytest.mark.parametrize("impl", IMPLS)
def test_find_highest_gradient_without_gradients(impl: str) -> None:
    mod = load(impl, "appendix_d")
    with pytest.raises(ValueError):
        mod.find_highest_gradient(torch.nn.Linear(2, 2))


# ---- lr_at_step ------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_lr_schedule_values(impl: str) -> None:
    mod = load(impl, "appendix_d")
    total, warmup = 20, 4

    def lr(s: int) -> float:
        return mod.lr_at_step(s, total, warmup, PEAK, initial_lr=INITIAL, min_lr=MIN)

    assert lr(0) == pytest.approx(INITIAL)  # warmup starts at initial_lr
    assert lr(2) == pytest.approx(INITIAL + 2 * (PEAK - INITIAL) / 4)
    assert lr(3) < PEAK
    assert lr(4) == pytest.approx(PEAK)  # warmup ends at the optimizer's peak
    assert lr(12) == pytest.approx(MIN + (PEAK - MIN) / 2)  # half way down the cosine
    assert lr(20) == pytest.approx(MIN)  # the cosine ends at min_lr
    values = [lr(s) for s in range(total + 1)]
    assert all(a < b for a, b in zip(values[:warmup + 1], values[1:warmup + 1]))
    assert all(a > b for a, b in zip(values[warmup:], values[warmup + 1:]))
    assert values == pytest.approx([_expected_lr(s, total, warmup) for s in range(total + 1)])


@pytest.mark.parametrize("impl", IMPLS)
def test_lr_schedule_defaults_and_edges(impl: str) -> None:
    mod = load(impl, "appendix_d")
    assert mod.lr_at_step(0, 10, 5, 1e-3) == pytest.approx(3e-05)  # default initial_lr
    assert mod.lr_at_step(10, 10, 5, 1e-3) == pytest.approx(1e-6)  # default min_lr
    assert mod.lr_at_step(0, 10, 0, 1e-3) == pytest.approx(1e-3)  # no warmup: start at the peak
    assert mod.lr_at_step(3, 3, 3, 1e-3) == pytest.approx(1e-3)  # all warmup: no division by zero


# ---- train_model -----------------------------------------------------------------------------


def _loaders(n_train: int = 4, n_val: int = 2, batch: int = 2, seq: int = 8):
    g = torch.Generator().manual_seed(7)
    data = torch.randint(0, TINY_CFG["vocab_size"], (batch * (n_train + n_val), seq + 1), generator=g)
    train = TensorDataset(data[: batch * n_train, :-1], data[: batch * n_train, 1:])
    val = TensorDataset(data[batch * n_train:, :-1], data[batch * n_train:, 1:])
    return DataLoader(train, batch_size=batch, shuffle=False), DataLoader(val, batch_size=batch)


def _run(impl: str, n_epochs: int = 3, warmup: int = 3, eval_freq: int = 5, clip_spy=None,
         monkeypatch=None, train_loader=None, val_loader=None, peak: float = PEAK):
    mod = load(impl, "appendix_d")
    ch04 = load("reference", "ch04")
    torch.manual_seed(123)
    model = ch04.GPTModel(TINY_CFG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak, weight_decay=0.1)
    if train_loader is None:
        train_loader, val_loader = _loaders()
    if clip_spy is not None:
        monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_spy(model, optimizer))
    result = mod.train_model(model, train_loader, val_loader, optimizer, "cpu", n_epochs=n_epochs,
                             eval_freq=eval_freq, eval_iter=1, start_context="Every effort moves you",
                             tokenizer=None, warmup_steps=warmup, initial_lr=INITIAL, min_lr=MIN)
    return model, optimizer, result


@pytest.mark.parametrize("impl", IMPLS)
def test_train_model_tracks_lrs_tokens_and_losses(impl: str) -> None:
    model, optimizer, (train_losses, val_losses, tokens, lrs) = _run(impl)
    total = 4 * 3
    assert lrs == pytest.approx([_expected_lr(s, total, 3) for s in range(total)])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(lrs[-1])
    # evaluations at global steps 0, 5, 10; each step sees 2 x 8 input tokens
    assert tokens == [16 * 1, 16 * 6, 16 * 11]
    assert len(train_losses) == len(val_losses) == 3
    assert all(isinstance(v, float) and math.isfinite(v) for v in train_losses + val_losses)
    assert model.training


@pytest.mark.parametrize("impl", IMPLS)
def test_train_model_clips_from_the_warmup_step_on(impl: str, monkeypatch) -> None:
    calls: list[tuple[float, float]] = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def spy(model, optimizer):
        def clip(parameters, max_norm, *args, **kwargs):
            params = list(parameters)
            assert max_norm == 1.0
            real_clip(params, max_norm, *args, **kwargs)
            norm = torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]))
            calls.append((optimizer.param_groups[0]["lr"], float(norm)))
        return clip

    _, _, (_, _, _, lrs) = _run(impl, clip_spy=spy, monkeypatch=monkeypatch)
    # 12 steps, warmup 3: clipped at global steps 3..11 (the repository's >=), never before
    assert len(calls) == 9
    assert [lr for lr, _ in calls] == pytest.approx(lrs[3:])
    assert all(norm <= 1.0 + 1e-4 for _, norm in calls)


@pytest.mark.parametrize("impl", IMPLS)
def test_train_model_overfits_one_batch(impl: str) -> None:
    g = torch.Generator().manual_seed(3)
    data = torch.randint(0, TINY_CFG["vocab_size"], (2, 9), generator=g)
    ds = TensorDataset(data[:, :-1], data[:, 1:])
    loader = DataLoader(ds, batch_size=2)
    _, _, (train_losses, val_losses, _, lrs) = _run(
        impl, n_epochs=31, warmup=5, eval_freq=10, train_loader=loader, val_loader=loader, peak=5e-3)
    assert len(lrs) == 31 and len(train_losses) == 4  # evaluated at steps 0, 10, 20, 30
    assert train_losses[-1] < 0.5 * train_losses[0]
    assert train_losses == pytest.approx(val_losses)  # same loader for both


def test_solution_and_reference_train_alike() -> None:
    _, _, ref = _run("reference")
    _, _, sol = _run("solutions")
    for a, b in zip(ref, sol):
        assert a == pytest.approx(b, rel=1e-5)
