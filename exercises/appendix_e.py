# appendix_e.py: your exercises for "Parameter-efficient fine-tuning with LoRA" in "Build a Large
# Language Model (From Scratch)".
# Replace each `raise NotImplementedError(...)` with your code; the docstrings say what to build.
# Check your work with `llmgrade check <id>` (for example `llmgrade check appendix_e.LoRALayer`);
# `llmgrade list` shows every id.
#
"""Appendix E: Parameter-efficient fine-tuning with LoRA.

Add a trainable low-rank update beside each frozen linear layer of a model.
"""

from __future__ import annotations

import math

import torch


class LoRALayer(torch.nn.Module):
    """The low-rank update of LoRA: `(alpha / rank) * (x @ A @ B)`.

    Book section: E.4.
    Task: create two parameters, `A` of shape (in_dim, rank) initialised with
    `torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))` and `B` of shape (rank, out_dim) filled
    with zeros; keep `alpha` and `rank` as attributes.
    Returns: for x of shape (..., in_dim), a tensor of shape (..., out_dim).
    Hints:
    - Because `B` starts at zero the update is zero until training changes it.
    - Scale by `alpha / rank` (the book's repository and the LoRA paper; the printed book
      scales by `alpha` alone).
    """

    def __init__(self, in_dim, out_dim, rank, alpha):
        """Create the parameters `A` (in_dim, rank) and `B` (rank, out_dim) and store `alpha` and `rank`."""
        super().__init__()
        raise NotImplementedError("Exercise appendix_e.LoRALayer: Create the parameters `A` (in_dim, rank) and `B` (rank, out_dim) and store `alpha` and `rank`.")

    def forward(self, x):
        """Return `(alpha / rank) * (x @ A @ B)`, shape (..., out_dim)."""
        raise NotImplementedError("Exercise appendix_e.LoRALayer: Return `(alpha / rank) * (x @ A @ B)`, shape (..., out_dim).")


class LinearWithLoRA(torch.nn.Module):
    """An existing linear layer plus a LoRA update of matching size.

    Book section: E.4.
    Task: keep the given `nn.Linear` as `self.linear` and create
    `self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)` on the same
    device and dtype as `linear.weight`; the forward pass adds the two outputs.
    Returns: for x of shape (..., in_features), `linear(x) + lora(x)` of shape (..., out_features).
    Hints:
    - A freshly wrapped layer gives exactly the output of the original linear layer.
    """

    def __init__(self, linear, rank, alpha):
        """Store `linear` and create the matching `lora` layer."""
        super().__init__()
        raise NotImplementedError("Exercise appendix_e.LinearWithLoRA: Store `linear` and create the matching `lora` layer.")

    def forward(self, x):
        """Return `linear(x) + lora(x)`."""
        raise NotImplementedError("Exercise appendix_e.LinearWithLoRA: Return `linear(x) + lora(x)`.")


def replace_linear_with_lora(model, rank, alpha):
    """Replace every nn.Linear inside `model`, at any depth, by a LinearWithLoRA wrapping it (in place).

    Book section: E.4.
    Task: walk `model.named_children()`; replace each `nn.Linear` child with
    `LinearWithLoRA(child, rank, alpha)` via `setattr`, leave children that already are
    `LinearWithLoRA` alone, and recurse into every other child.
    Returns: None (the model is changed in place).
    Hints:
    - Recursion reaches the layers inside `nn.Sequential` containers and transformer blocks.
    """
    raise NotImplementedError("Exercise appendix_e.replace_linear_with_lora: Replace every nn.Linear inside `model`, at any depth, by a LinearWithLoRA wrapping it (in place).")
