# appendix_d.py: your exercises for "Adding bells and whistles to the training loop" in "Build a
# Large Language Model (From Scratch)".
# Replace each `raise NotImplementedError(...)` with your code; the docstrings say what to build.
# Check your work with `llmgrade check <id>` (for example `llmgrade check
# appendix_d.find_highest_gradient`); `llmgrade list` shows every id.
#
"""Appendix D: Adding bells and whistles to the training loop.

Extend the chapter 5 pretraining loop with a linear learning-rate warmup, cosine decay and
gradient clipping.
"""

from __future__ import annotations

import math

import torch

from ch05 import calc_loss_batch, evaluate_model


def find_highest_gradient(model):
    """Return the largest gradient value (a Python float) over all parameters of `model` that have one.

    Book section: D.3.
    Task: after `loss.backward()`, look at `param.grad` of every parameter (skip those whose
    gradient is None) and return the largest single entry (the signed maximum, not the largest
    absolute value).
    Returns: a Python float. Raise ValueError when no parameter has a gradient.
    Hints:
    - `param.grad.max()` is the largest entry of one gradient tensor.
    """
    raise NotImplementedError("Exercise appendix_d.find_highest_gradient: Return the largest gradient value (a Python float) over all parameters of `model` that have one.")


def lr_at_step(step, total_training_steps, warmup_steps, peak_lr, initial_lr=3e-05, min_lr=1e-6):
    """Return the learning rate of optimizer step `step` (counting from 0): linear warmup, then cosine decay.

    Book section: D.1 and D.2.
    Task: for `step < warmup_steps` the rate rises linearly from `initial_lr`, by
    `(peak_lr - initial_lr) / warmup_steps` per step. From `step == warmup_steps` (where it is
    `peak_lr`) it follows half a cosine down to `min_lr`, reached at `step ==
    total_training_steps`: with `progress = (step - warmup_steps) / (total_training_steps -
    warmup_steps)`, `lr = min_lr + (peak_lr - min_lr) * 0.5 * (1 + cos(pi * progress))`.
    Returns: a Python float.
    Hints:
    - With `warmup_steps == 0` there is no warmup: do not divide by it.
    - Guard the cosine's denominator so a schedule with `total_training_steps == warmup_steps`
      does not divide by zero (use at least 1).
    """
    raise NotImplementedError("Exercise appendix_d.train_model: Return the learning rate of optimizer step `step` (counting from 0): linear warmup, then cosine decay.")


def train_model(model, train_loader, val_loader, optimizer, device, n_epochs, eval_freq, eval_iter,
                start_context, tokenizer, warmup_steps, initial_lr=3e-05, min_lr=1e-6):
    """Pretrain `model` with learning-rate warmup, cosine decay and gradient clipping; return the tracked figures.

    Book section: D.4.
    Task: the chapter 5 loop (`calc_loss_batch`, `evaluate_model` from ch05) with these changes.
    The peak learning rate is `optimizer.param_groups[0]["lr"]` as given; the total number of
    steps is `len(train_loader) * n_epochs`. Before each step (global step counting from 0) set
    every param group's "lr" to `lr_at_step(...)` and append it to `track_lrs`. After
    `loss.backward()` clip the gradients with `torch.nn.utils.clip_grad_norm_(model.parameters(),
    max_norm=1.0)` once `global_step >= warmup_steps`. Count the tokens of each input batch;
    when `global_step % eval_freq == 0` record the train and validation loss (over `eval_iter`
    batches) and the tokens seen so far. `start_context` and `tokenizer` are only for printing a
    sample as the book does: do not print anything.
    Returns: (train_losses, val_losses, track_tokens_seen, track_lrs), lists; `track_lrs` has
    one entry per step.
    Hints:
    - Start `global_step` at -1 and increment it at the top of the step, as in chapter 5.
    - Read the peak learning rate before the first step changes it.
    """
    raise NotImplementedError("Exercise appendix_d.train_model: Pretrain `model` with learning-rate warmup, cosine decay and gradient clipping; return the tracked figures.")
