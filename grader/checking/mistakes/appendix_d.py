"""Appendix D: the training setup both sides share, an instrumented optimizer, and a switchable
copy of the reference loop for the two clipping conventions and the usual slips.

The recipe ``appendix_d.train`` runs the student's ``train_model`` on :func:`build_setup`'s
objects; :func:`simulate` runs :func:`train_loop` on identical objects here, on the trusted side,
with one convention or slip switched on. Both record, at every ``optimizer.step()``: the learning
rate of every param group, the gradient norm before clipping (summed by tensor hooks during
backward) and the norm the optimizer actually sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from grader.recipes.appendix_d import CFG, Recorder, build_setup

def lr_schedule(total: int, warmup: int, peak: float, initial: float, min_lr: float, *,
                shift: int = 0, floor: float | None = None) -> list[float]:
    """The learning rates of steps 0..total-1: ``shift`` +1 is the off-by-one step count,
    ``floor=0`` the cosine that ends at 0 instead of ``min_lr``."""
    low = min_lr if floor is None else floor
    out = []
    for k in range(total):
        step = k + shift
        if step < warmup:
            out.append(initial + step * (peak - initial) / warmup)
        else:
            progress = (step - warmup) / max(1, total - warmup)
            out.append(low + (peak - low) * 0.5 * (1 + math.cos(math.pi * progress)))
    return out


def schedule_mistakes(total: int, warmup: int, peak: float, initial: float, min_lr: float) -> dict[str, list[float]]:
    return {
        "appendix_d_warmup_off_by_one": lr_schedule(total, warmup, peak, initial, min_lr, shift=1),
        "appendix_d_cosine_to_zero": lr_schedule(total, warmup, peak, initial, min_lr, floor=0.0),
    }


def train_loop(setup: dict[str, Any], n_epochs: int, eval_freq: int, eval_iter: int, warmup_steps: int,
               initial_lr: float, min_lr: float, *, clip: str = "ge", set_lr: bool = True) -> dict[str, Any]:
    """The reference loop; ``clip``: "ge" (repository), "gt" (printed book), "never", "always"."""
    import reference.ch05 as r5

    model, optimizer = setup["model"], setup["optimizer"]
    train_loader, val_loader = setup["train_loader"], setup["val_loader"]
    train_losses, val_losses, tokens, lrs = [], [], [], []
    seen, step = 0, -1
    peak = optimizer.param_groups[0]["lr"]
    total = len(train_loader) * n_epochs
    schedule = lr_schedule(total, warmup_steps, peak, initial_lr, min_lr)
    clipping: dict[str, Callable[[int], bool]] = {
        "ge": lambda s: s >= warmup_steps, "gt": lambda s: s > warmup_steps,
        "never": lambda s: False, "always": lambda s: True}
    for _ in range(n_epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            step += 1
            lr = schedule[step]
            if set_lr:
                for group in optimizer.param_groups:
                    group["lr"] = lr
            lrs.append(lr)
            loss = r5.calc_loss_batch(x, y, model, "cpu")
            loss.backward()  # type: ignore[no-untyped-call]
            if clipping[clip](step):
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            seen += x.numel()
            if step % eval_freq == 0:
                tl, vl = r5.evaluate_model(model, train_loader, val_loader, "cpu", eval_iter)
                train_losses.append(tl)
                val_losses.append(vl)
                tokens.append(seen)
    return {"train_losses": train_losses, "val_losses": val_losses, "tokens_seen": tokens, "track_lrs": lrs}


def simulate(setup_args: dict[str, Any], loop_args: dict[str, Any], **switches: Any) -> dict[str, Any]:
    """:func:`train_loop` with ``switches`` on the objects of :func:`build_setup`, fully recorded."""
    setup = build_setup(**setup_args)
    recorder = Recorder(setup["model"], setup["optimizer"])
    result = train_loop(setup, **loop_args, **switches)
    return {**result, **recorder.record()}
