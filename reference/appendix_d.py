"""Appendix D: Adding bells and whistles to the training loop.

The chapter 5 pretraining loop with three additions: a linear learning-rate warmup, cosine
decay after the warmup, and gradient clipping.

The printed book clips when ``global_step > warmup_steps``; the book's repository (and this
module) clips from ``global_step >= warmup_steps`` on. The two differ at exactly one step.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from .ch05 import calc_loss_batch, evaluate_model


def find_highest_gradient(model: torch.nn.Module) -> float:
    """The largest (signed) gradient value over all parameters of ``model`` that have a gradient."""
    max_grad: float | None = None
    for param in model.parameters():
        if param.grad is not None:
            max_grad_param = float(param.grad.detach().max())
            if max_grad is None or max_grad_param > max_grad:
                max_grad = max_grad_param
    if max_grad is None:
        raise ValueError("no parameter has a gradient: call loss.backward() first")
    return max_grad


def lr_at_step(
    step: int,
    total_training_steps: int,
    warmup_steps: int,
    peak_lr: float,
    initial_lr: float = 3e-05,
    min_lr: float = 1e-6,
) -> float:
    """The learning rate of ``step`` (0-based): linear warmup, then cosine decay.

    Steps ``0 .. warmup_steps - 1`` rise linearly from ``initial_lr`` by
    ``(peak_lr - initial_lr) / warmup_steps`` per step; step ``warmup_steps`` is ``peak_lr`` and
    the cosine then falls to ``min_lr`` at step ``total_training_steps``.
    """
    if step < warmup_steps:
        lr_increment = (peak_lr - initial_lr) / warmup_steps
        return initial_lr + step * lr_increment
    # max(1, ...) keeps a schedule that is all warmup from dividing by zero
    progress = (step - warmup_steps) / max(1, total_training_steps - warmup_steps)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def train_model(
    model: torch.nn.Module,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    n_epochs: int,
    eval_freq: int,
    eval_iter: int,
    start_context: str,
    tokenizer: Any,
    warmup_steps: int,
    initial_lr: float = 3e-05,
    min_lr: float = 1e-6,
) -> tuple[list[float], list[float], list[int], list[float]]:
    """Pretrain ``model`` with warmup, cosine decay and gradient clipping.

    The peak learning rate is the one the optimizer was created with. Every ``eval_freq`` steps
    (from step 0) the train and validation losses over ``eval_iter`` batches are recorded.
    ``start_context`` and ``tokenizer`` are accepted for the book's signature: the book uses
    them only to print a sample after each epoch, and this loop prints nothing.

    Returns ``(train_losses, val_losses, track_tokens_seen, track_lrs)``; ``track_lrs`` has one
    entry per optimizer step.
    """
    train_losses: list[float] = []
    val_losses: list[float] = []
    track_tokens_seen: list[int] = []
    track_lrs: list[float] = []
    tokens_seen, global_step = 0, -1

    peak_lr = optimizer.param_groups[0]["lr"]
    total_training_steps = len(train_loader) * n_epochs

    for _epoch in range(n_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            global_step += 1

            lr = lr_at_step(global_step, total_training_steps, warmup_steps, peak_lr,
                            initial_lr, min_lr)
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr
            track_lrs.append(lr)

            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()

            # no clipping during warmup: the small learning rates keep the updates small anyway
            if global_step >= warmup_steps:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)

            optimizer.step()
            tokens_seen += input_batch.numel()

            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(
                    model, train_loader, val_loader, device, eval_iter
                )
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)

    return train_losses, val_losses, track_tokens_seen, track_lrs
