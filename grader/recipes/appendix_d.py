"""Appendix D recipes: the largest gradient of a model, and the training loop with warmup, cosine
decay and clipping run on a tiny reference GPT with an instrumented optimizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from grader.recipes import Impl, recipe


def _grad_model(kind: str, state_dict: dict[str, torch.Tensor], seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "gpt":
        import reference.ch04 as r4
        from grader.mistakes.appendix_d import CFG

        model: torch.nn.Module = r4.GPTModel(CFG)
    else:
        model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    model.load_state_dict(state_dict)
    return model.double()


@recipe("appendix_d.grad_model_state")
def grad_model_state(impl: Impl, kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights for :func:`highest_gradient` (built here, whatever the side)."""
    torch.manual_seed(seed)
    if kind == "gpt":
        import reference.ch04 as r4
        from grader.mistakes.appendix_d import CFG

        return dict(r4.GPTModel(CFG).state_dict())
    return dict(torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).state_dict())


@recipe("appendix_d.highest_gradient")
def highest_gradient(impl: Impl, kind: str, state_dict: dict[str, torch.Tensor], inputs: torch.Tensor,
                     targets: torch.Tensor, frozen: Sequence[str] = (), backward: bool = True,
                     seed: int = 0) -> dict[str, Any]:
    """One cross-entropy backward on a reference model, then ``find_highest_gradient(model)``.

    Parameters named in ``frozen`` get no gradient. Also returns every parameter's largest and
    smallest gradient entry (for naming mistakes). A ``ValueError`` comes back as ``error``.
    """
    model = _grad_model(kind, state_dict, seed)
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    if backward:
        logits = model(inputs)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, -2), targets.flatten())
        loss.backward()  # type: ignore[no-untyped-call]
    stats = {n: [float(p.grad.max()), float(p.grad.min())] for n, p in model.named_parameters()
             if p.grad is not None}
    try:
        value = impl.attr("appendix_d", "find_highest_gradient")(model)
    except ValueError as exc:
        return {"error": "ValueError", "message": str(exc), "stats": stats}
    kind_name = type(value).__name__
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = float(value.detach().reshape(-1)[0])
    return {"value": value, "type": kind_name, "stats": stats, "order": list(stats)}


@recipe("appendix_d.train")
def train(impl: Impl, setup: dict[str, Any], loop: dict[str, Any]) -> dict[str, Any]:
    """Run ``train_model`` on :func:`grader.mistakes.appendix_d.build_setup`'s objects, recorded."""
    from grader.mistakes.appendix_d import Recorder, build_setup

    objects = build_setup(**setup)
    recorder = Recorder(objects["model"], objects["optimizer"])
    result = impl.attr("appendix_d", "train_model")(
        objects["model"], objects["train_loader"], objects["val_loader"], objects["optimizer"], "cpu",
        loop["n_epochs"], loop["eval_freq"], loop["eval_iter"], "Every effort moves", objects["tokenizer"],
        warmup_steps=loop["warmup_steps"], initial_lr=loop["initial_lr"], min_lr=loop["min_lr"])
    out: dict[str, Any] = {"returned": type(result).__name__, **recorder.record()}
    if isinstance(result, (list, tuple)) and len(result) == 4:
        names = ("train_losses", "val_losses", "tokens_seen", "track_lrs")
        for name, value in zip(names, result):
            out[name] = [float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v for v in value] \
                if isinstance(value, (list, tuple)) else value
    return out
