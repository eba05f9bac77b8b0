"""Chapter 6: the classifier's usual slips, computed with reference models on the trusted side."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.nn import functional as F

from grader.recipes.ch06 import classifier
from grader.recipes.support import loader


def all_logits(cfg: dict[str, Any], state: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    """Logits at every position, (batch, num_tokens, num_classes), float64, eval mode."""
    model = classifier(cfg, state, int(state["out_head.weight"].shape[0]))
    with torch.no_grad():
        return model(inputs)  # type: ignore[no-any-return]


def loss_mistakes(cfg: dict[str, Any], state: dict[str, torch.Tensor], inputs: torch.Tensor,
                  labels: torch.Tensor, *, graded: str = "last") -> dict[str, torch.Tensor]:
    """Batch losses a slipped position choice gives (``graded``: the position the item asks for)."""
    logits = all_logits(cfg, state, inputs)
    t = logits.shape[1]
    found = {
        "ch06_logits_first_token": F.cross_entropy(logits[:, 0, :], labels),
        "ch06_logits_last_token": F.cross_entropy(logits[:, -1, :], labels),
        "ch06_loss_over_all_tokens": F.cross_entropy(logits.flatten(0, 1), labels.repeat_interleave(t)),
    }
    found.pop("ch06_logits_first_token" if graded == "first" else "ch06_logits_last_token")
    return found


def accuracy(cfg: dict[str, Any], state: dict[str, torch.Tensor], inputs: torch.Tensor,
             labels: torch.Tensor, batch_size: int, num_batches: int | None = None, *,
             position: int = -1, per_batch_mean: bool = False) -> float:
    """Accuracy from ``position``'s logits; ``per_batch_mean``: the mean of per-batch accuracies."""
    logits = all_logits(cfg, state, inputs)[:, position, :]
    correct = (logits.argmax(-1) == labels).to(torch.float64)
    batches = list(loader(correct, labels, batch_size))
    limit = len(batches) if num_batches is None else min(num_batches, len(batches))
    used = [b for b, _ in batches[:limit]]
    if not used:
        return float("nan")
    if per_batch_mean:
        return float(torch.stack([b.mean() for b in used]).mean())
    return float(torch.cat(used).mean())


def accuracy_mistakes(cfg: dict[str, Any], state: dict[str, torch.Tensor], inputs: torch.Tensor,
                      labels: torch.Tensor, batch_size: int, num_batches: int | None = None) -> dict[str, float]:
    return {
        "ch06_logits_first_token": accuracy(cfg, state, inputs, labels, batch_size, num_batches, position=0),
        "ch06_accuracy_mean_of_batches": accuracy(cfg, state, inputs, labels, batch_size, num_batches,
                                                  per_batch_mean=True),
    }


def labels_by_position(cfg: dict[str, Any], state: dict[str, torch.Tensor], ids: list[list[int]],
                       position: int) -> list[str]:
    """What classify_review returns for each id list when it reads ``position``'s logits."""
    out = []
    for row in ids:
        logits = all_logits(cfg, state, torch.tensor([row]))[0, position]
        out.append("spam" if int(logits.argmax()) == 1 else "not spam")
    return out


def train_variant(cfg: dict[str, Any], state: dict[str, torch.Tensor], train_x: torch.Tensor,
                  train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, batch_size: int,
                  num_epochs: int, eval_freq: int, eval_iter: int, lr: float = 1e-3, seed: int = 0, *,
                  zero_grad: bool = True, first_step: int = -1) -> dict[str, Any]:
    """The reference loop with one slip: no ``zero_grad`` or ``global_step`` starting at 0."""
    import reference.ch06 as r

    model = classifier(cfg, state, freeze=True, train=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    torch.manual_seed(seed)
    tl, vl = loader(train_x, train_y, batch_size), loader(val_x, val_y, batch_size)
    train_losses, val_losses, train_accs, val_accs = [], [], [], []
    examples_seen, step = 0, first_step
    for _ in range(num_epochs):
        model.train()
        for xb, yb in tl:
            if zero_grad:
                optimizer.zero_grad()
            loss = r.calc_loss_batch(xb, yb, model, "cpu")
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            examples_seen += xb.shape[0]
            step += 1
            if step % eval_freq == 0:
                a, b = r.evaluate_model(model, tl, vl, "cpu", eval_iter)
                train_losses.append(a)
                val_losses.append(b)
        train_accs.append(r.calc_accuracy_loader(tl, model, "cpu", num_batches=eval_iter))
        val_accs.append(r.calc_accuracy_loader(vl, model, "cpu", num_batches=eval_iter))
    return {"results": [train_losses, val_losses, train_accs, val_accs, examples_seen],
            "final": dict(model.state_dict())}


# ---- comparisons shared by the chapter 6 and 7 suites ---------------------------------------


def as_number(got: Any, what: str) -> float:
    """A Python number (or 0-d tensor) as a float; anything else fails naming its type."""
    from grader.checking.failures import GradeFailure

    if isinstance(got, torch.Tensor) and got.dim() == 0:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise GradeFailure("ch06.not_number", what=what, got=type(got).__name__)
    return float(got)


def expect_number(got: Any, expected: float, what: str, mistakes: Mapping[str, Any] | None = None,
                  rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """``got`` equals ``expected`` (NaN only matches NaN); a match with a mistake names it."""
    import math

    from grader.checking.failures import GradeFailure

    value = as_number(got, what)
    if math.isnan(expected) or math.isnan(value):
        if math.isnan(expected) and math.isnan(value):
            return
        raise GradeFailure("ch06.number", what=what, expected=expected, got=value)
    if math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
        return
    diagnosis = None
    for name, wrong in (mistakes or {}).items():
        w = float(wrong)
        if not math.isnan(w) and math.isclose(value, w, rel_tol=rtol, abs_tol=atol):
            diagnosis = name
            break
    raise GradeFailure("ch06.number", what=what, expected=expected, got=value, diagnosis=diagnosis)


def expect_numbers(got: Any, expected: list[float], what: str, rtol: float = 1e-6, atol: float = 1e-8,
                   diagnosis: str | None = None) -> None:
    """A list of numbers, same length and values (the first differing index named)."""
    import math

    from grader.checking.failures import GradeFailure

    if not isinstance(got, list):
        raise GradeFailure("ch06.not_list", what=what, got=type(got).__name__)
    if len(got) != len(expected):
        raise GradeFailure("ch06.list_length", what=what, expected=len(expected), got=len(got),
                           diagnosis=diagnosis)
    for i, (g, e) in enumerate(zip(got, expected)):
        value = as_number(g, f"{what}[{i}]")
        if math.isnan(e) and math.isnan(value):
            continue
        if not math.isclose(value, e, rel_tol=rtol, abs_tol=atol):
            raise GradeFailure("ch06.list_value", what=what, index=i, expected=e, got=value,
                               diagnosis=diagnosis)


class Lazy(Mapping[str, Any]):
    """A mistakes mapping computed on first use: only a failing comparison pays for it."""

    def __init__(self, compute: Callable[[], Mapping[str, Any]]) -> None:
        self._compute = compute
        self._value: Mapping[str, Any] | None = None

    def _get(self) -> Mapping[str, Any]:
        if self._value is None:
            self._value = self._compute()
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())
