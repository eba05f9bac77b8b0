"""Hidden checks for exercises 3.2 (2-d context vectors from the wrapper) and 3.3 (GPT-2 size
multi-head attention).

Exercise 3.2 erratum (BOOK_FACTS): the tensor printed in the book's solutions is not what the code
gives today, so the shape [2, 6, 2] and the behaviour are graded, never the printed numbers.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_state_keys, expect_tensor
from grader.checking.declare import problem
from grader.checking.failures import GradeFailure
from grader.messages import phrase

BOOK_INPUTS = torch.tensor([[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
                            [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]], dtype=torch.float64)

EX32 = problem("3.2", "ch03", section="3.6.1", title="Returning two-dimensional embedding vectors", points=1,
               symbols=("exercise_3_2_wrapper",), depends=("ch03.MultiHeadAttentionWrapper",))
EX33 = problem("3.3", "ch03", section="3.6.2", title="Initializing GPT-2 size attention modules", points=1,
               symbols=("exercise_3_3_gpt2_attention",), depends=("ch03.MultiHeadAttention",))
BATCH = torch.stack([BOOK_INPUTS, BOOK_INPUTS])  # (2, 6, 3), as in the book


def _module(student: Any, ref: Any, function: str, args: list[Any], x: torch.Tensor, swap: tuple[str, ...],
            weights: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = dict(function=function, args=args, x=x, weights=weights)
    expected = ref.run("ch03.returned_module", **inputs)
    got = student.run("ch03.returned_module", swap=swap, what=function, time_limit_s=60, **inputs)
    return got, expected


def _expect_outputs(got: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    if got.get("load_failed"):
        expect_state_keys(got["state"], expected["state"], what)
    expect_tensor(got["eval_output"], expected["eval_output"], phrase("what.output_in_eval_mode", what=what))
    for k, out in enumerate(got["train_outputs"]):
        expect_tensor(out, expected["eval_output"], phrase("what.output_in_training_mode_call", what=what, call=k + 1))


# ---- Exercise 3.2 -------------------------------------------------------------------------

F32 = "exercise_3_2_wrapper"
SWAP_32 = ("ch03.MultiHeadAttentionWrapper",)
W32 = {"class": "MultiHeadAttentionWrapper", "args": [3, 1, 6, 0.0, 2], "seed": 123}


def _shape(got: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    shape = list(got["eval_output"].shape) if type(got.get("eval_output")) is torch.Tensor else None
    want = list(expected["eval_output"].shape)
    if shape != want:
        diagnosis = "ch03_ex32_d_out_not_per_head" if shape == want[:-1] + [2 * want[-1]] else None
        raise GradeFailure("compare.shape", what=what, expected=want, got=shape, diagnosis=diagnosis)


@EX32
def test_context_vectors_are_two_dimensional(student, ref):
    got, expected = _module(student, ref, F32, [3, 6], BATCH, SWAP_32)
    _shape(got, expected, "exercise_3_2_wrapper(3, 6) on the (2, 6, 3) batch")


@EX32
def test_two_heads_without_dropout(student, ref):
    got, expected = _module(student, ref, F32, [5, 4], torch.randn(1, 4, 5, dtype=torch.float64,
                                                               generator=torch.Generator().manual_seed(2)), SWAP_32)
    what = "exercise_3_2_wrapper(5, 4)"
    _shape(got, expected, what)
    expect_equal(got["type"], expected["type"], phrase("what.type_module_returned", what=what))
    expect_state_keys(got["state"], expected["state"], what)
    expect_equal(got["dropout"], expected["dropout"], phrase("what.dropout_rates_module", what=what))


@EX32
def test_forward_with_the_same_weights(student, ref):
    got, expected = _module(student, ref, F32, [3, 6], BATCH, SWAP_32, weights=W32)
    _expect_outputs(got, expected, "exercise_3_2_wrapper(3, 6)")


@EX32
@pytest.mark.integration
def test_with_your_wrapper(student, ref):
    got, expected = _module(student, ref, F32, [3, 6], BATCH, (), weights=W32)
    _expect_outputs(got, expected, phrase("what.call_with_your", call="exercise_3_2_wrapper(3, 6)", name="MultiHeadAttentionWrapper"))


# ---- Exercise 3.3 -------------------------------------------------------------------------

F33 = "exercise_3_3_gpt2_attention"
SWAP_33 = ("ch03.MultiHeadAttention",)
W33 = {"class": "MultiHeadAttention", "args": [768, 768, 1024, 0.0, 12], "seed": 0}
X33 = torch.randn(1, 4, 768, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
SMALL = torch.zeros(1, 1, 768, dtype=torch.float64)


@EX33
def test_parameter_count(student, ref):
    got, expected = _module(student, ref, F33, [], SMALL, SWAP_33)
    expect_equal(got["num_params"], 2_360_064, phrase("what.exercise_gpt_attention_number_parameters"))


@EX33
def test_gpt2_configuration(student, ref):
    got, expected = _module(student, ref, F33, [], SMALL, SWAP_33)
    what = "exercise_3_3_gpt2_attention()"
    expect_state_keys(got["state"], expected["state"], what)  # 768 wide, 1024 x 1024 mask
    expect_equal(got["attrs"], expected["attrs"], phrase("what.d_out_num_heads_and", what=what))
    expect_equal(got["dropout"], expected["dropout"], phrase("what.dropout_rate", what=what))


@EX33
def test_gpt2_forward_with_the_same_weights(student, ref):
    got, expected = _module(student, ref, F33, [], X33, SWAP_33, weights=W33)
    _expect_outputs(got, expected, "exercise_3_3_gpt2_attention()")


@EX33
@pytest.mark.integration
def test_gpt2_with_your_multihead_attention(student, ref):
    got, expected = _module(student, ref, F33, [], X33, (), weights=W33)
    _expect_outputs(got, expected, phrase("what.call_with_your", call="exercise_3_3_gpt2_attention()", name="MultiHeadAttention"))
