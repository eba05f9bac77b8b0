"""Hidden checks for ch03.CausalAttention (3.5.3) and ch03.MultiHeadAttentionWrapper (3.6.1)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.checks import module_forward, module_structure
from grader.checking.declare import component
from grader.checking.mistakes.ch03_attention import causal, causal_mistakes, wrapper_mistakes

CAUSAL_ATTENTION = component("ch03", "CausalAttention", section="3.5.3", title="Causal attention with dropout",
                             points=3)
MULTI_HEAD_ATTENTION_WRAPPER = component("ch03", "MultiHeadAttentionWrapper", section="3.6.1",
                                         title="Stacking causal attention heads", points=2,
                                         depends=("ch03.CausalAttention",))


def _x(batch: int, tokens: int, d_in: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, tokens, d_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _no_dropout(sd: dict[str, torch.Tensor], inputs: list[Any]) -> dict[str, torch.Tensor]:
    """In training mode, an output equal to the eval-mode one means dropout was never applied."""
    sd64 = {k: v.double() for k, v in sd.items()}
    with torch.no_grad():
        return {"ch03_dropout_not_applied": causal(sd64, inputs[0].double())}


# ---- CausalAttention ----------------------------------------------------------------------

CA = "CausalAttention"
CA_ARGS = [6, 4, 8, 0.0]  # d_in, d_out, context_length, dropout


@CAUSAL_ATTENTION
def test_state_dict_and_mask_buffer(student, ref):
    module_structure(student, ref, "ch03", CA, CA_ARGS)


@CAUSAL_ATTENTION
def test_causal_forward_and_gradients(student, ref):
    module_forward(student, ref, "ch03", CA, CA_ARGS, [_x(2, 5, 6)], mistakes=causal_mistakes())


@CAUSAL_ATTENTION
def test_input_shorter_than_context(student, ref):
    module_forward(student, ref, "ch03", CA, CA_ARGS, [_x(3, 2, 6, seed=2)], mistakes=causal_mistakes())


@CAUSAL_ATTENTION
def test_batch_of_one_at_full_context(student, ref):
    module_forward(student, ref, "ch03", CA, CA_ARGS, [_x(1, 8, 6, seed=3)], mistakes=causal_mistakes())


@CAUSAL_ATTENTION
def test_qkv_bias_and_float32(student, ref):
    module_forward(student, ref, "ch03", CA, CA_ARGS, [_x(2, 4, 6).float()], kwargs={"qkv_bias": True},
                   dtype="float32", mistakes=causal_mistakes())


@CAUSAL_ATTENTION
def test_eval_mode_disables_dropout(student, ref):
    module_forward(student, ref, "ch03", CA, [6, 4, 8, 0.5], [_x(2, 5, 6)], train=False)


@CAUSAL_ATTENTION
def test_dropout_on_attention_weights_in_training(student, ref):
    """Training mode, dropout 0.5, same seed as the reference: dropout on the attention weights, once."""
    module_forward(student, ref, "ch03", CA, [6, 4, 8, 0.5], [_x(2, 5, 6)], train=True, mistakes=_no_dropout)


# ---- MultiHeadAttentionWrapper ------------------------------------------------------------

WR = "MultiHeadAttentionWrapper"
WR_ARGS = [6, 3, 8, 0.0, 2]  # d_in, d_out (per head), context_length, dropout, num_heads
SWAP = ("ch03.CausalAttention",)


@MULTI_HEAD_ATTENTION_WRAPPER
def test_heads_in_a_module_list(student, ref):
    module_structure(student, ref, "ch03", WR, WR_ARGS, swap=SWAP)


@MULTI_HEAD_ATTENTION_WRAPPER
def test_wrapper_forward_and_gradients(student, ref):
    # Forward alone first: a wrongly shaped output is then reported (and named) before backward runs.
    module_forward(student, ref, "ch03", WR, WR_ARGS, [_x(2, 5, 6)], swap=SWAP, backward=False,
                   mistakes=wrapper_mistakes(2))
    module_forward(student, ref, "ch03", WR, WR_ARGS, [_x(2, 5, 6)], swap=SWAP, mistakes=wrapper_mistakes(2))


@MULTI_HEAD_ATTENTION_WRAPPER
def test_three_heads_with_qkv_bias(student, ref):
    module_forward(student, ref, "ch03", WR, [6, 2, 8, 0.0, 3], [_x(2, 4, 6)], kwargs={"qkv_bias": True},
                   swap=SWAP, backward=False, mistakes=wrapper_mistakes(3))
    module_forward(student, ref, "ch03", WR, [6, 2, 8, 0.0, 3], [_x(2, 4, 6)], kwargs={"qkv_bias": True},
                   swap=SWAP, mistakes=wrapper_mistakes(3))


@MULTI_HEAD_ATTENTION_WRAPPER
def test_wrapper_batch_of_one_single_token(student, ref):
    module_forward(student, ref, "ch03", WR, WR_ARGS, [_x(1, 1, 6)], swap=SWAP)


@MULTI_HEAD_ATTENTION_WRAPPER
def test_wrapper_dropout_in_training(student, ref):
    module_forward(student, ref, "ch03", WR, [6, 3, 8, 0.5, 2], [_x(2, 5, 6)], swap=SWAP, train=True)


@MULTI_HEAD_ATTENTION_WRAPPER
@pytest.mark.integration
def test_wrapper_with_your_causal_attention(student, ref):
    module_forward(student, ref, "ch03", WR, WR_ARGS, [_x(2, 5, 6)], backward=False, mistakes=wrapper_mistakes(2))
    module_forward(student, ref, "ch03", WR, WR_ARGS, [_x(2, 5, 6)], mistakes=wrapper_mistakes(2))
