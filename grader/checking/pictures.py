"""Data for the report's pictures, taken on the trusted side when a check fails.

The worker returns plain tensors and numbers (as for every check); this module reduces them to small
lists that travel in the check's ``details`` and that ``reports/`` draws as inline SVG:

- ``attention``: the student's and the reference's attention weights (first sequence, first head),
  so a wrong mask or scaling shows at a glance;
- ``diff_map``: |student - reference| of a module's output per token position and feature
  (max over the other dimensions, pooled to at most ``MAX_TOKENS`` x ``MAX_FEATURES`` cells);
- ``loss_curve``: the student's losses over the reference's, for the training items.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from grader.checking.failures import GradeFailure

MAX_TOKENS, MAX_FEATURES, MAX_ATTENTION, MAX_LOSSES = 24, 32, 16, 200


def _tensor(value: Any) -> bool:
    return type(value) is torch.Tensor and value.is_floating_point()


def _rounded(matrix: torch.Tensor) -> list[list[float]]:
    return [[float(f"{v:.4g}") for v in row] for row in matrix.tolist()]


def _pool(matrix: torch.Tensor, dim: int, most: int) -> torch.Tensor:
    """At most ``most`` non-overlapping groups of neighbours along ``dim``, each its maximum."""
    if matrix.shape[dim] <= most:
        return matrix
    return torch.stack([chunk.amax(dim) for chunk in matrix.tensor_split(most, dim=dim)], dim=dim)


def diff_map(got: Any, expected: Any, token_dim: int | None) -> dict[str, Any] | None:
    """|got - expected| as token positions x features, or ``None`` when there is nothing to draw."""
    if token_dim is None or not (_tensor(got) and _tensor(expected)) or got.shape != expected.shape:
        return None
    if expected.dim() < 2:
        return None
    diff = (got.detach().cpu().double() - expected.detach().cpu().double()).abs().nan_to_num(float("inf"))
    diff = diff.movedim(token_dim % diff.dim(), -2)
    diff = diff.reshape(-1, diff.shape[-2], diff.shape[-1]).amax(0)
    tokens, features = diff.shape
    finite_max = float(diff[torch.isfinite(diff)].max()) if bool(torch.isfinite(diff).any()) else 0.0
    pooled = _pool(_pool(diff.clamp(max=finite_max * 10 or 1.0), 0, MAX_TOKENS), 1, MAX_FEATURES)
    return {"cells": _rounded(pooled), "tokens": tokens, "features": features, "max": finite_max}


def attention_pair(got: Any, expected: Any) -> dict[str, Any] | None:
    """The first (sequence, head) attention matrices of both sides, cropped to ``MAX_ATTENTION`` tokens."""
    if not (_tensor(got) and _tensor(expected)) or got.shape != expected.shape or got.dim() != 2:
        return None
    n = min(got.shape[0], MAX_ATTENTION)
    return {"student": _rounded(got[:n, :n].double()), "reference": _rounded(expected[:n, :n].double())}


def loss_curve(got: Any, expected: Any) -> dict[str, Any] | None:
    """Two lists of losses (numbers), or ``None`` when either is not a list of numbers."""
    def numbers(values: Any) -> list[float] | None:
        if isinstance(values, torch.Tensor):
            values = values.tolist()
        if not isinstance(values, (list, tuple)) or not values:
            return None
        out: list[float] = []
        for v in values[:MAX_LOSSES]:
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                v = v.item()
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return None
            out.append(float(v))
        return out
    student, reference = numbers(got), numbers(expected)
    if student is None or reference is None:
        return None
    return {"student": student, "reference": reference}


@contextmanager
def pictures_on_failure(**pictures: dict[str, Any] | None) -> Iterator[None]:
    """Attach the given pictures' data to a :class:`GradeFailure` raised inside the block."""
    try:
        yield
    except GradeFailure as failure:
        failure.details.update({name: data for name, data in pictures.items() if data is not None})
        raise


def losses_pair(got: Sequence[Any], expected: Sequence[Any], index: int = 0) -> dict[str, Any] | None:
    """``loss_curve`` of the ``index``-th list of two result tuples (``(train_losses, ...)``)."""
    try:
        return loss_curve(got[index], expected[index])
    except (IndexError, TypeError, KeyError):
        return None
