"""Chapter 7: the collate function's and the prompt format's usual slips; a text comparison."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from grader.checking.failures import GradeFailure


def collate(batch: Sequence[Sequence[int]], pad: int = 50256, ignore: int = -100,
            allowed_max_length: int | None = None, *, mask: str = "book", shift: int = 1,
            extra: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's collate with one slip: ``mask`` "none" (padding kept as targets), "all" (the
    first pad masked too); ``shift=0`` (targets not shifted); ``extra=0`` (no room for the end token)."""
    longest = max(len(item) + extra for item in batch)
    xs, ys = [], []
    for item in batch:
        padded = list(item) + [pad] * (longest - len(item))
        if shift:
            x, y = torch.tensor(padded[:-1]), torch.tensor(padded[1:])
        else:
            x, y = torch.tensor(padded[:-1]), torch.tensor(padded[:-1])
        positions = torch.nonzero(y == pad).flatten()
        if mask == "book" and positions.numel() > 1:
            y[positions[1:]] = ignore
        elif mask == "all" and positions.numel() > 0:
            y[positions] = ignore
        if allowed_max_length is not None:
            x, y = x[:allowed_max_length], y[:allowed_max_length]
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def collate_mistakes(batch: Sequence[Sequence[int]], pad: int = 50256, ignore: int = -100,
                     allowed_max_length: int | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """``{"inputs": {diagnosis: tensor}, "targets": {...}}`` for the known collate slips."""
    variants: dict[str, dict[str, Any]] = {
        "ch07_collate_padding_not_masked": {"mask": "none"},
        "ch07_collate_first_pad_masked": {"mask": "all"},
        "ch07_collate_targets_not_shifted": {"shift": 0},
        "ch07_collate_no_end_token": {"extra": 0},
    }
    out: dict[str, dict[str, torch.Tensor]] = {"inputs": {}, "targets": {}}
    for name, kw in variants.items():
        x, y = collate(batch, pad, ignore, allowed_max_length, **kw)
        out["inputs"][name] = x
        out["targets"][name] = y
    return out


def expect_text(got: Any, expected: str, what: str, mistakes: dict[str, str] | None = None) -> None:
    """Exact string equality; the failure shows the first differing character in context."""
    if not isinstance(got, str):
        raise GradeFailure("ch07.not_text", what=what, got=type(got).__name__)
    if got == expected:
        return
    i = next((k for k, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    diagnosis = next((name for name, text in (mistakes or {}).items() if text == got), None)
    raise GradeFailure("ch07.text_differs", what=what, index=i, expected=repr(expected[max(0, i - 20):i + 30]),
                       got=repr(got[max(0, i - 20):i + 30]), diagnosis=diagnosis,
                       details={"expected": expected, "got": got})
