"""Appendix D recipes: the largest gradient of a model, and the training loop with warmup, cosine
decay and clipping run on a tiny reference GPT with an instrumented optimizer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from grader.recipes import Impl, recipe
from grader.recipes.support import CharTokenizer

CFG: dict[str, Any] = {"vocab_size": 40, "context_length": 8, "emb_dim": 16, "n_heads": 2, "n_layers": 2,
       "drop_rate": 0.0, "qkv_bias": False}


class Recorder:
    """Wraps ``optimizer.step`` and hooks every parameter's gradient."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self.step_lrs: list[list[float]] = []
        self.raw_norms: list[float] = []
        self.step_norms: list[float] = []
        self._sumsq = 0.0
        for p in model.parameters():
            if p.requires_grad:
                p.register_hook(self._hook)  # type: ignore[no-untyped-call]
        original = optimizer.step

        def step(*args: Any, **kwargs: Any) -> Any:
            self.step_lrs.append([float(g["lr"]) for g in optimizer.param_groups])
            self.raw_norms.append(math.sqrt(self._sumsq))
            self._sumsq = 0.0
            grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
            self.step_norms.append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))  # type: ignore[arg-type]
                                   if grads else 0.0)
            return original(*args, **kwargs)

        optimizer.step = step  # type: ignore[method-assign]

    def _hook(self, grad: torch.Tensor) -> None:
        self._sumsq += float((grad.detach().double() ** 2).sum())

    def record(self) -> dict[str, Any]:
        return {"step_lrs": self.step_lrs, "raw_norms": self.raw_norms, "step_norms": self.step_norms,
                "state": {k: v.detach().clone() for k, v in self.model.state_dict().items()}}


def build_setup(state_dict: dict[str, torch.Tensor], n_train: int, n_val: int, batch_size: int,
                peak_lr: float, seed: int = 0) -> dict[str, Any]:
    """The reference GPT (float64, ``state_dict`` loaded), loaders and an AdamW with two param groups."""
    from torch.utils.data import DataLoader, TensorDataset

    import reference.ch04 as r4

    torch.manual_seed(seed)
    model = r4.GPTModel(CFG)
    model.load_state_dict(state_dict)
    model.double()
    g = torch.Generator().manual_seed(seed + 1)
    n_tokens = 6

    def loader(n_batches: int) -> Any:
        ids = torch.randint(0, CFG["vocab_size"], (n_batches * batch_size, n_tokens + 1), generator=g)
        return DataLoader(TensorDataset(ids[:, :-1], ids[:, 1:]), batch_size=batch_size, shuffle=False)

    train_loader, val_loader = loader(n_train), loader(n_val)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=peak_lr)
    return {"model": model, "train_loader": train_loader, "val_loader": val_loader, "optimizer": optimizer,
            "tokenizer": CharTokenizer(CFG["vocab_size"])}


def _grad_model(kind: str, state_dict: dict[str, torch.Tensor], seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "gpt":
        import reference.ch04 as r4

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
    """Run ``train_model`` on :func:`build_setup`'s objects, recorded."""

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
