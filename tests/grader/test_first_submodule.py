"""Where, for modules (issue 21): a module whose output differs is traced again on both sides, and the
message names the first of its named submodules (in the order the forward pass ran them) whose
output differs: ``W_query``, ``dropout``, ``out_proj``, ``norm1``, ``ff``, ..."""

from __future__ import annotations

from typing import Any

import torch

from grader.checking.checks import with_first_submodule
from grader.checking.compare import expect_tensor
from grader.checking.failures import GradeFailure
from grader.checking.tolerance import policy
from grader.messages import current_lang, set_lang
from grader.recipes import run_reference

MHA = dict(module="ch03", name="MultiHeadAttention", args=[4, 4, 6, 0.0, 2], kwargs={}, seed=0,
           inputs=[torch.randn(1, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)])


def test_the_trace_lists_the_named_submodules_in_the_order_they_ran() -> None:
    traced = run_reference("module.forward", "cpu", **MHA, trace=True)["trace"]
    assert [name for name, _ in traced] == ["W_key", "W_query", "W_value", "dropout", "out_proj"]  # the book's order
    assert all(isinstance(value, torch.Tensor) for _, value in traced)


class _Side:
    """A side of the comparison that answers the traced call from a recipe run here."""

    def __init__(self, change: dict[str, Any] | None = None) -> None:
        self.change = change or {}
        self.calls: list[dict[str, Any]] = []

    def run(self, recipe: str, /, *, swap: Any = (), what: str = "", time_limit_s: Any = None, **inputs: Any) -> Any:
        self.calls.append(inputs)
        result = run_reference(recipe, "cpu", **inputs)
        result["trace"] = [[name, value * 2 if name in self.change else value] for name, value in result["trace"]]
        return result


def _failure() -> GradeFailure:
    try:
        expect_tensor(torch.ones(1, 3, 2), torch.zeros(1, 3, 2), "MultiHeadAttention output", token_dim=1)
    except GradeFailure as failure:
        return failure
    raise AssertionError("the outputs differ")


def test_the_message_names_the_first_submodule_whose_output_differs() -> None:
    before = current_lang()
    try:
        set_lang("en")
        student = _Side(change={"dropout": True, "out_proj": True})  # the attention weights part first
        said = with_first_submodule(_failure(), student, _Side(), MHA, (), "MultiHeadAttention", None,
                                    policy(torch.float64))
        assert said.message_id == "compare.values" and said.details["first_submodule"] == "dropout"
        assert "from token 0 on; the first submodule whose output differs is `dropout`" in str(said)
        assert student.calls and student.calls[0]["trace"] is True and "grad_seed" not in student.calls[0]
        set_lang("zh-CN")
        said = with_first_submodule(_failure(), _Side(change={"out_proj": True}), _Side(), MHA, (), "MHA", None,
                                    policy(torch.float64))
        assert "第一个输出不同的子模块是`out_proj`" in str(said)
    finally:
        set_lang(before)


def test_nothing_is_added_when_every_submodule_agrees_or_for_other_failures() -> None:
    failure = _failure()
    same = with_first_submodule(failure, _Side(), _Side(), MHA, (), "MHA", None, policy(torch.float64))
    assert same is failure  # every submodule agrees: the top-level code after them is where it parts
    shape = GradeFailure("compare.shape", what="x", expected=[1], got=[2])
    assert with_first_submodule(shape, _Side(), _Side(), MHA, (), "MHA", None, policy(torch.float64)) is shape
