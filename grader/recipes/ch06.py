"""Chapter 6 recipes: the spam data set, the classifier surgery, loss/accuracy, fine-tuning, inference.

Models are tiny reference ``GPTModel`` objects (``reference.ch04``) loaded from a ``state_dict``
input, so only the graded function comes from the student. CSV files are written by the recipe
into a fresh temporary folder (inside the worker's own working folder on the student side).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from grader.recipes import Impl, recipe
from grader.recipes.support import (DTYPES, CallRecorder, CharTokenizer, get_tokenizer, loader, scratch_dir,
                                    seeded_gpt)


def char_ids(text: str) -> list[int]:
    return CharTokenizer().encode(text)


def write_csv(folder: str, rows: Sequence[Sequence[Any]], name: str = "data.csv") -> str:
    path = os.path.join(folder, name)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Label", "Text"])
        for label, text in rows:
            writer.writerow([label, text])
    return path


# ---- models --------------------------------------------------------------------------------


def with_head(model: nn.Module, num_classes: int) -> nn.Module:
    """The reference surgery's module layout (no freezing): a ``num_classes`` head with bias."""
    head = model.out_head
    assert isinstance(head, nn.Linear)
    model.out_head = nn.Linear(head.in_features, num_classes)
    return model


def classifier(cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], num_classes: int = 2,
               dtype: str = "float64", train: bool = False, freeze: bool = False) -> nn.Module:
    """A reference GPT classifier with the given weights; ``freeze`` applies the book's freezing."""
    import reference.ch06

    model = seeded_gpt(cfg)
    if freeze:
        reference.ch06.prepare_classifier(model, num_classes)
    else:
        with_head(model, num_classes)
    model.load_state_dict(state_dict)
    model.to(DTYPES[dtype])
    model.train(train)
    return model


@recipe("ch06.classifier_state")
def classifier_state(impl: Impl, cfg: dict[str, Any], num_classes: int = 2, seed: int = 0,
                     head_bias: list[float] | None = None) -> dict[str, torch.Tensor]:
    """Weights of a reference classifier (GPT body + ``num_classes`` head); optional fixed head bias."""
    model = with_head(seeded_gpt(cfg, seed), num_classes)
    if head_bias is not None:
        with torch.no_grad():
            head = model.out_head
            assert isinstance(head, nn.Linear)
            head.bias.copy_(torch.tensor(head_bias))
    return dict(model.state_dict())


@recipe("ch06.gpt_state")
def gpt_state(impl: Impl, cfg: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    return dict(seeded_gpt(cfg, seed).state_dict())


@recipe("ch06.call_or_error")
def call_or_error(impl: Impl, module: str, name: str, args: Sequence[Any] = (),
                  kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a function; an exception (other than a stub's NotImplementedError) comes back by name."""
    fn = impl.attr(module, name)
    try:
        return {"value": fn(*args, **(kwargs or {}))}
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exception type is what is graded
        return {"error": type(exc).__name__, "message": str(exc), **_raised_at(exc, impl.module(module))}


def _raised_at(exc: BaseException, module: Any) -> dict[str, Any]:
    """The innermost frame of ``exc`` in ``module``'s folder (the student's file): file, line, source."""
    from pathlib import Path

    from grader.recipes.frames import student_frame

    found = student_frame(exc, Path(getattr(module, "__file__", "") or ".").resolve().parent)
    return {key: found[key] for key in ("file", "line", "source_line") if key in found}


# ---- data set --------------------------------------------------------------------------------


@recipe("ch06.spam_dataset")
def spam_dataset(impl: Impl, rows: list[list[Any]], tokenizer: str = "gpt2", max_length: int | None = None,
                 pad_token_id: int | None = None, context_length: int | None = None,
                 batch: bool = False) -> dict[str, Any]:
    """Write the rows as a CSV file, build the data set, return its length, ``max_length`` and items.

    With ``context_length`` the student's ``exercise_6_1_full_context_dataset`` builds it.
    """
    tok = get_tokenizer(tokenizer)
    with scratch_dir(impl) as folder:
        path = write_csv(folder, rows)
        if context_length is not None:
            ds = impl.attr("ch06", "exercise_6_1_full_context_dataset")(path, tok, context_length)
        else:
            kwargs: dict[str, Any] = {"max_length": max_length}
            if pad_token_id is not None:
                kwargs["pad_token_id"] = pad_token_id
            ds = impl.attr("ch06", "SpamDataset")(path, tok, **kwargs)
    n = len(ds)
    items = []
    for i in range(n):
        item = ds[i]
        items.append(list(item) if isinstance(item, (tuple, list)) else item)
    stacked = None
    if batch and n:
        first = next(iter(DataLoader(ds, batch_size=n, shuffle=False)))  # default collate must stack
        stacked = list(first) if isinstance(first, (tuple, list)) else first
    return {"len": n, "max_length": getattr(ds, "max_length", None), "items": items, "batch": stacked}


# ---- surgery ---------------------------------------------------------------------------------


def trainable_names(model: nn.Module) -> list[str]:
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


@recipe("ch06.prepare_classifier")
def prepare_classifier(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None,
                       num_classes: int = 2, seed: int = 123, x: torch.Tensor | None = None,
                       meta: bool = False) -> dict[str, Any]:
    """Load a reference GPT, seed, call ``prepare_classifier``; report parameters and the output.

    ``meta``: the real-size model on the meta device (only parameter counts come back).
    """
    fn = impl.attr("ch06", "prepare_classifier")
    if meta:
        with torch.device("meta"):
            model = seeded_gpt(cfg)
            torch.manual_seed(seed)
            returned = fn(model, num_classes)
        return {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "total": sum(p.numel() for p in model.parameters()), "same_object": returned is model}
    model = seeded_gpt(cfg)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    torch.manual_seed(seed)
    returned = fn(model, num_classes)
    head = model.out_head
    result: dict[str, Any] = {
        "same_object": returned is model,
        "trainable": trainable_names(model),
        "state": {k: list(v.shape) for k, v in model.state_dict().items()},
        "head": {k: v for k, v in head.state_dict().items()} if isinstance(head, nn.Module) else {},
        "head_type": type(head).__name__,
    }
    if x is not None:
        model.to(torch.float64).eval()
        with torch.no_grad():
            result["output"] = model(x)
    return result


@recipe("ch06.make_all_trainable")
def make_all_trainable(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None,
                       own_surgery: bool = False, meta: bool = False) -> dict[str, Any]:
    """The classifier after the surgery (the reference's unless ``own_surgery``), then exercise 6.2."""
    import reference.ch06

    surgery = impl.attr("ch06", "prepare_classifier") if own_surgery else reference.ch06.prepare_classifier
    fn = impl.attr("ch06", "exercise_6_2_make_all_trainable")
    if meta:
        with torch.device("meta"):
            model = seeded_gpt(cfg)
            surgery(model, 2)
            returned = fn(model)
        return {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "same_object": returned is model}
    model = seeded_gpt(cfg)
    torch.manual_seed(123)
    surgery(model, 2)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    returned = fn(model)
    after = dict(model.state_dict())
    changed = sorted(k for k in before if k not in after or not torch.equal(before[k], after[k]))
    return {"same_object": returned is model, "trainable": trainable_names(model),
            "frozen": sorted(n for n, p in model.named_parameters() if not p.requires_grad),
            "changed": changed}


# ---- loss and accuracy -----------------------------------------------------------------------


@recipe("ch06.metric")
def metric(impl: Impl, fn: str, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor],
           inputs: torch.Tensor, labels: torch.Tensor, batch_size: int, num_batches: int | None = None,
           train: bool = False, seed: int = 0, pass_num_batches: bool = True) -> dict[str, Any]:
    """``calc_accuracy_loader`` or ``calc_loss_loader`` (``fn``) over a loader of the given tensors."""
    model = classifier(cfg, state_dict, int(state_dict["out_head.weight"].shape[0]), train=train)
    rec = CallRecorder(model)
    data = loader(inputs, labels, batch_size)
    torch.manual_seed(seed)
    f: Callable[..., Any] = impl.attr("ch06", fn)
    value = f(data, model, "cpu", num_batches=num_batches) if pass_num_batches else f(data, model, "cpu")
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    return {"value": value, "grad_enabled": [c["grad_enabled"] for c in rec.calls],
            "training": [c["training"] for c in rec.calls]}


@recipe("ch06.loss_batch")
def loss_batch(impl: Impl, fn: str, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor],
               inputs: torch.Tensor, labels: torch.Tensor, module: str = "ch06") -> dict[str, Any]:
    """Call a batch-loss function (float64 model), backpropagate, return the loss and gradients."""
    model = classifier(cfg, state_dict, int(state_dict["out_head.weight"].shape[0]))
    loss = impl.attr(module, fn)(inputs, labels, model, "cpu")
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"{fn} should return a tensor (with gradients), got {type(loss).__name__}")
    grads: dict[str, torch.Tensor] = {}
    if loss.requires_grad:
        loss.backward()  # type: ignore[no-untyped-call]
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return {"loss": loss, "grads": grads}


# ---- fine-tuning -----------------------------------------------------------------------------


@recipe("ch06.train")
def train(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], train_x: torch.Tensor,
          train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, batch_size: int,
          num_epochs: int, eval_freq: int, eval_iter: int, lr: float = 1e-3, seed: int = 0) -> dict[str, Any]:
    """The book's set-up (frozen body, AdamW) on a tiny float64 classifier, then the student's loop."""
    model = classifier(cfg, state_dict, freeze=True, train=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    torch.manual_seed(seed)
    out = impl.attr("ch06", "train_classifier_simple")(
        model, loader(train_x, train_y, batch_size), loader(val_x, val_y, batch_size), optimizer, "cpu",
        num_epochs=num_epochs, eval_freq=eval_freq, eval_iter=eval_iter)
    if not isinstance(out, (tuple, list)) or len(out) != 5:
        raise TypeError("train_classifier_simple should return 5 values (train_losses, val_losses, "
                        "train_accs, val_accs, examples_seen)")
    return {"results": list(out), "final": dict(model.state_dict())}


@recipe("ch06.evaluate")
def evaluate(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], train_x: torch.Tensor,
             train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, batch_size: int,
             eval_iter: int) -> dict[str, Any]:
    """``evaluate_model`` on a model in train mode with dropout; the mode it leaves behind."""
    model = classifier(cfg, state_dict, train=False)
    model.train()
    rec = CallRecorder(model)
    torch.manual_seed(0)
    out = impl.attr("ch06", "evaluate_model")(model, loader(train_x, train_y, batch_size),
                                             loader(val_x, val_y, batch_size), "cpu", eval_iter)
    return {"losses": list(out) if isinstance(out, (tuple, list)) else out, "training_after": model.training,
            "training": [c["training"] for c in rec.calls], "grad_enabled": [c["grad_enabled"] for c in rec.calls]}


# ---- inference -------------------------------------------------------------------------------


@recipe("ch06.classify")
def classify(impl: Impl, cfg: dict[str, Any], state_dict: dict[str, torch.Tensor],
             cases: list[dict[str, Any]], train: bool = False) -> dict[str, Any]:
    """``classify_review`` on each case ({text, max_length?, pad_token_id?}) with a char tokenizer.

    Returns the labels and, per case, what the model was called with (ids) and in which mode.
    """
    model = classifier(cfg, state_dict, train=train, dtype="float64")
    rec = CallRecorder(model, keep_inputs=True)
    fn = impl.attr("ch06", "classify_review")
    labels, seen = [], []
    for case in cases:
        model.train(train)
        start = len(rec.calls)
        kwargs = {k: case[k] for k in ("max_length", "pad_token_id") if k in case}
        labels.append(fn(case["text"], model, CharTokenizer(), "cpu", **kwargs))
        seen.append([{"input": c["input"], "training": c["training"]} for c in rec.calls[start:]])
    return {"labels": labels, "calls": seen}
