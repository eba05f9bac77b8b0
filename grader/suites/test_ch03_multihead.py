"""Hidden checks for ch03.MultiHeadAttention (book section 3.6.2)."""

from __future__ import annotations

import pytest
import torch

from grader.checking.checks import module_forward, module_structure
from grader.checking.declare import component
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.attention import mha_mistakes
from grader.messages import phrase

pytestmark = component("ch03", "MultiHeadAttention", section="3.6.2", title="Multi-head attention with weight splits",
                       points=5)

ARGS = [8, 8, 6, 0.0, 2]  # d_in, d_out, context_length, dropout, num_heads


def _x(batch: int, tokens: int, d_in: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, tokens, d_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_state_dict_names_and_mask_buffer(student, ref):
    module_structure(student, ref, "ch03", "MultiHeadAttention", ARGS)


def test_forward_and_gradients(student, ref):
    module_forward(student, ref, "ch03", "MultiHeadAttention", ARGS, [_x(2, 5)], mistakes=mha_mistakes(2))


def test_four_heads_with_qkv_bias(student, ref):
    args = [8, 12, 6, 0.0, 4]
    module_forward(student, ref, "ch03", "MultiHeadAttention", args, [_x(2, 6)],
                   kwargs={"qkv_bias": True}, mistakes=mha_mistakes(4))


def test_batch_of_one_at_full_context(student, ref):
    module_forward(student, ref, "ch03", "MultiHeadAttention", ARGS, [_x(1, 6)], mistakes=mha_mistakes(2))


def test_single_token(student, ref):
    module_forward(student, ref, "ch03", "MultiHeadAttention", ARGS, [_x(3, 1)])


def test_float32_output_dtype(student, ref):
    module_forward(student, ref, "ch03", "MultiHeadAttention", ARGS, [_x(2, 4).float()], dtype="float32",
                   backward=False)


def test_eval_mode_disables_dropout(student, ref):
    args = [8, 8, 6, 0.5, 2]
    module_forward(student, ref, "ch03", "MultiHeadAttention", args, [_x(2, 5)], train=False)


def test_dropout_active_in_training(student):
    """In train mode dropout (0.5) must change the attention weights: two calls differ."""
    request = dict(module="ch03", name="MultiHeadAttention", args=[8, 8, 6, 0.5, 2], inputs=[_x(2, 5)],
                   train=True, repeat=2)
    got = student.run("module.forward", what=phrase("what.multiheadattention_in_training_mode"), **request)
    first, second = got["outputs"]
    evaluated = student.run("module.forward", what="MultiHeadAttention", **{**request, "train": False})
    if torch.allclose(first, second) or torch.allclose(first, evaluated["output"]):
        raise GradeFailure("module.dropout_inactive", what="MultiHeadAttention")
