"""Hidden checks for ch03.SelfAttention_v1, ch03.SelfAttention_v2 (sections 3.4.1-3.4.2) and
exercise 3.1 (copying v2's weights into v1)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.checks import module_forward, module_structure
from grader.checking.compare import expect_equal, expect_tensor
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch03_attention import self_attention_mistakes
from grader.messages import phrase

SELF_ATTENTION_V1 = component("ch03", "SelfAttention_v1", section="3.4.1",
                              title="Self-attention with trainable weight matrices", points=2)
SELF_ATTENTION_V2 = component("ch03", "SelfAttention_v2", section="3.4.2", title="Self-attention with nn.Linear layers",
                              points=2)
EX31 = problem("3.1", "ch03", section="3.4.2", title="Comparing SelfAttention_v1 and SelfAttention_v2", points=1,
               symbols=("exercise_3_1_copy_weights",), depends=("ch03.SelfAttention_v1", "ch03.SelfAttention_v2"))

# The book's six 3-d token embeddings ("Your journey starts with one step").
_BOOK = torch.tensor([[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
                            [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]], dtype=torch.float64)


def _book() -> torch.Tensor:
    """A fresh copy: the reference side's module.forward marks its float64 inputs requires_grad in place."""
    return _BOOK.clone()


def _x(tokens: int, d_in: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(tokens, d_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _initial_weights(student: Any, ref: Any, name: str, args: list[Any]) -> None:
    request = dict(module="ch03", name=name, args=args, kwargs={}, seed=123)
    expected = ref.run("module.state_dict", **request)
    got = student.run("module.state_dict", what=name, **request)
    for key, value in expected.items():
        if key not in got:
            raise GradeFailure("compare.keys_missing", what=name, names=key)
        expect_tensor(got[key], value, phrase("what.right_after_seed", module=f"{name}{tuple(args)}", key=key),
                      token_dim=None)


# ---- SelfAttention_v1 ---------------------------------------------------------------------

V1 = "SelfAttention_v1"


@SELF_ATTENTION_V1
def test_v1_parameters(student, ref):
    module_structure(student, ref, "ch03", V1, [3, 2])


@SELF_ATTENTION_V1
def test_v1_forward_and_gradients(student, ref):
    module_forward(student, ref, "ch03", V1, [3, 2], [_book()], token_dim=0,
                   mistakes=self_attention_mistakes(linear=False))


@SELF_ATTENTION_V1
def test_v1_d_in_differs_from_d_out(student, ref):
    module_forward(student, ref, "ch03", V1, [5, 3], [_x(4, 5)], token_dim=0,
                   mistakes=self_attention_mistakes(linear=False))


@SELF_ATTENTION_V1
def test_v1_single_token(student, ref):
    module_forward(student, ref, "ch03", V1, [4, 4], [_x(1, 4)], token_dim=0)


@SELF_ATTENTION_V1
def test_v1_initial_weights_follow_the_book(student, ref):
    """torch.rand(d_in, d_out) for W_query, W_key, W_value, created in that order."""
    _initial_weights(student, ref, V1, [3, 2])


@SELF_ATTENTION_V1
def test_v1_float32(student, ref):
    module_forward(student, ref, "ch03", V1, [3, 2], [_book().float()], dtype="float32",
                   backward=False, token_dim=0)


# ---- SelfAttention_v2 ---------------------------------------------------------------------

V2 = "SelfAttention_v2"


@SELF_ATTENTION_V2
def test_v2_parameters(student, ref):
    module_structure(student, ref, "ch03", V2, [3, 2])


@SELF_ATTENTION_V2
def test_v2_forward_and_gradients(student, ref):
    module_forward(student, ref, "ch03", V2, [3, 2], [_book()], token_dim=0,
                   mistakes=self_attention_mistakes(linear=True))


@SELF_ATTENTION_V2
def test_v2_qkv_bias(student, ref):
    module_forward(student, ref, "ch03", V2, [5, 3], [_x(4, 5)], kwargs={"qkv_bias": True}, token_dim=0,
                   mistakes=self_attention_mistakes(linear=True))


@SELF_ATTENTION_V2
def test_v2_single_token(student, ref):
    module_forward(student, ref, "ch03", V2, [4, 4], [_x(1, 4)], token_dim=0)


@SELF_ATTENTION_V2
def test_v2_initial_weights_follow_the_book(student, ref):
    """nn.Linear layers W_query, W_key, W_value created in that order (book numbers at seed 123)."""
    _initial_weights(student, ref, V2, [3, 2])


@SELF_ATTENTION_V2
def test_v2_float32(student, ref):
    module_forward(student, ref, "ch03", V2, [3, 2], [_book().float()], dtype="float32",
                   backward=False, token_dim=0)


# ---- Exercise 3.1 -------------------------------------------------------------------------

SWAP_31 = ("ch03.SelfAttention_v1", "ch03.SelfAttention_v2")
NAMES = ("W_query", "W_key", "W_value")


def _copy(student: Any, ref: Any, d_in: int, d_out: int, *, own: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = dict(d_in=d_in, d_out=d_out, x=_x(6, d_in, seed=4), seed=123, own_classes=own)
    expected = ref.run("ch03.copy_weights", **inputs)
    got = student.run("ch03.copy_weights", swap=() if own else SWAP_31, what="exercise_3_1_copy_weights",
                      **inputs)
    if "error" in got:
        raise GradeFailure("ch03.copy_raised", what="exercise_3_1_copy_weights", message=got["error"],
                           diagnosis="ch03_v1_weights_not_transposed" if d_in != d_out else None)
    return got, expected


def _expect_copied(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for name in NAMES:
        wrong = {"ch03_v1_weights_not_transposed": got["v2_before"][f"{name}.weight"],
                 "ch03_copy_wrong_direction": got["v1_before"][name]}
        expect_tensor(got["v1_after"][name], expected["v1_after"][name],
                      f"sa_v1.{name} after exercise_3_1_copy_weights", token_dim=None, mistakes=wrong)


@EX31
def test_square_weights_are_transposed(student, ref):
    """With d_in == d_out a copy without .T runs but gives the wrong matrices."""
    got, expected = _copy(student, ref, 3, 3)
    _expect_copied(got, expected)


@EX31
def test_outputs_match_after_copy(student, ref):
    got, expected = _copy(student, ref, 3, 2)
    _expect_copied(got, expected)
    expect_tensor(got["v1_out"], got["v2_out"], phrase("what.sa_v_x_compared_with"), token_dim=0)
    expect_equal(got["v1_trainable"], expected["v1_trainable"], phrase("what.sa_v_trainable_parameters_after"))


@EX31
def test_sa_v2_left_unchanged(student, ref):
    got, _ = _copy(student, ref, 4, 2)
    for key, before in got["v2_before"].items():
        expect_tensor(got["v2_after"][key], before, phrase("what.sa_v_it_should_not", key=key), token_dim=None)


@EX31
@pytest.mark.integration
def test_copy_with_your_attention_classes(student, ref):
    got, expected = _copy(student, ref, 3, 2, own=True)
    expect_tensor(got["v1_out"], got["v2_out"], phrase("what.your_sa_v_x_compared"),
                  token_dim=0)
    expect_tensor(got["v1_out"], expected["v1_out"], phrase("what.your_sa_v_x_after"), token_dim=0)
