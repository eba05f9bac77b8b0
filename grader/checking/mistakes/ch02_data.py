"""Chapter 2: sliding-window datasets and simple tokenizers, with switches for the usual slips."""

from __future__ import annotations

from typing import Any

import torch


def windows(token_ids: list[int], max_length: int, stride: int, *, shift: int = 1,
            end_offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked (inputs, targets) of GPTDatasetV1; ``shift``/``end_offset`` select a slip.

    ``shift=0``: targets are the inputs (not shifted); ``end_offset=+1``: one window too many
    (``range(0, len - max_length + 1, ...)``, whose last target is one token short: dropped here);
    ``end_offset=-1``: one window too few.
    """
    inputs, targets = [], []
    for i in range(0, len(token_ids) - max_length + end_offset, stride):
        x = token_ids[i:i + max_length]
        y = token_ids[i + shift:i + shift + max_length]
        if len(x) != max_length or len(y) != max_length:
            continue
        inputs.append(x)
        targets.append(y)
    if not inputs:
        empty = torch.zeros(0, max_length, dtype=torch.long)
        return empty, empty.clone()
    return torch.tensor(inputs), torch.tensor(targets)


def window_mistakes(token_ids: list[int], max_length: int, stride: int) -> dict[str, dict[str, torch.Tensor]]:
    """``{"inputs": {diagnosis: tensor}, "targets": {diagnosis: tensor}}`` for the known slips."""
    variants: dict[str, dict[str, Any]] = {
        "ch02_targets_not_shifted": {"shift": 0},
        "ch02_stride_ignored": {"stride": 1},
        "ch02_window_range_one_too_short": {"end_offset": -1},
    }
    ref_inputs, ref_targets = windows(token_ids, max_length, stride)
    out: dict[str, dict[str, torch.Tensor]] = {"inputs": {}, "targets": {}}
    for name, kw in variants.items():
        kw = dict(kw)
        s = int(kw.pop("stride", stride))
        if s == stride and name == "ch02_stride_ignored":
            continue  # indistinguishable from the right answer here
        x, y = windows(token_ids, max_length, s, **kw)
        if not (x.shape == ref_inputs.shape and torch.equal(x, ref_inputs)):
            out["inputs"][name] = x
        if not (y.shape == ref_targets.shape and torch.equal(y, ref_targets)):
            out["targets"][name] = y
    return out


def decode_keeping_spaces(int_to_str: dict[int, str], ids: list[int]) -> str:
    """``decode`` that joins with spaces but forgets to remove the space before punctuation."""
    return " ".join(int_to_str[i] for i in ids)
