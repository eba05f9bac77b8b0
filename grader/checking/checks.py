"""Reusable check bodies for hidden suites: one line in a suite, a full differential check here.

Each function asks the student (in the worker) and the reference (here) the same recipe with the
same weights and inputs, then compares on this, trusted, side. ``mistakes`` maps diagnosis ids to
the outputs a known mistake would give (see :mod:`grader.checking.mistakes`), so a failure can name it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from grader.checking.compare import close, expect_grads, expect_state_keys, expect_tensor, is_tensor
from grader.checking.failures import GradeFailure
from grader.checking.pictures import attention_pair, diff_map
from grader.sandbox.parent import Student
from grader.checking.tolerance import policy
from grader.messages import phrase

Mistakes = Callable[[dict[str, torch.Tensor], list[Any]], Mapping[str, torch.Tensor]]


def reference_state(ref: Any, module: str, name: str, args: Sequence[Any] = (),
                    kwargs: dict[str, Any] | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights of a freshly built reference module: what both sides will load."""
    state: dict[str, torch.Tensor] = ref.run("module.state_dict", module=module, name=name, args=list(args),
                                             kwargs=kwargs or {}, seed=seed)
    return state


def module_structure(student: Student, ref: Any, module: str, name: str, args: Sequence[Any] = (),
                     kwargs: dict[str, Any] | None = None, what: str | None = None,
                     swap: Sequence[str] = ()) -> dict[str, Any]:
    """Same state_dict names and shapes as the reference; every tensor registered properly."""
    what = what or name
    inputs: dict[str, Any] = dict(module=module, name=name, args=list(args), kwargs=kwargs or {})
    expected = ref.run("module.info", **inputs)
    got = student.run("module.info", swap=swap, what=what, **inputs)
    expect_state_keys(got["state"], expected["state"], what)
    if got["plain_tensors"]:
        raise GradeFailure("module.plain_tensor", what=what, names=", ".join(got["plain_tensors"]))
    return dict(got)


def module_forward(student: Student, ref: Any, module: str, name: str, args: Sequence[Any],
                   inputs: Sequence[Any], *, kwargs: dict[str, Any] | None = None,
                   what: str | None = None, swap: Sequence[str] = (), dtype: str = "float64",
                   train: bool = False, backward: bool = True, token_dim: int | None = 1,
                   mistakes: Mistakes | None = None, seed: int = 0, repeat: int = 1,
                   time_limit_s: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Forward (and backward) with identical weights; compare output, dtype and every gradient."""
    what = what or name
    state = reference_state(ref, module, name, args, kwargs, seed)
    grad_output = None
    request: dict[str, Any] = dict(module=module, name=name, args=list(args), kwargs=kwargs or {},
                                   state_dict=state, inputs=list(inputs), train=train, seed=seed,
                                   dtype=dtype, repeat=repeat)
    if backward:
        request["grad_seed"] = seed + 1  # both sides backpropagate the same random projection
    expected = ref.run("module.forward", **request)
    out = expected["output"]
    grad_output = expected.get("grad_output")
    got = student.run("module.forward", swap=swap, what=what, time_limit_s=time_limit_s, **request)
    if got.get("load_failed"):
        expect_state_keys(got["state"], expected["state"], what)
    wrong = (lambda: mistakes(state, list(inputs))) if mistakes is not None else None
    tol = policy(getattr(torch, dtype), student.device)
    try:
        try:
            expect_tensor(got.get("output"), out, what=phrase("check.what.output", what=what), tol=tol,
                          token_dim=token_dim, mistakes=wrong)
        except GradeFailure as failure:  # what the report draws (grader.checking.pictures)
            pictures = {"attention": attention_pair(got.get("attention"), expected.get("attention")),
                        "diff_map": diff_map(got.get("output"), out, token_dim)}
            failure.details.update({k: v for k, v in pictures.items() if v is not None})
            raise with_first_submodule(failure, student, ref, request, swap, what, time_limit_s, tol) from None
        if grad_output is not None:
            expect_grads(got.get("param_grads", {}), expected.get("param_grads", {}), what)
            for i, (g, e) in enumerate(zip(got.get("input_grads", []), expected.get("input_grads", []))):
                if isinstance(e, torch.Tensor):
                    expect_tensor(g, e, what=phrase("check.what.input_gradient", what=what, index=i), tol=tol,
                                  token_dim=token_dim)
    except GradeFailure as failure:
        _blame_buffers(failure, student, request, got, state, out, tol, what, swap, time_limit_s)
        raise
    return got, expected


def with_first_submodule(failure: GradeFailure, student: Student, ref: Any, request: Mapping[str, Any],
                         swap: Sequence[str], what: str, time_limit_s: float | None, tol: Any) -> GradeFailure:
    """``failure`` said again with the first named submodule (in the order the forward pass ran
    them: ``W_query``, ``dropout``, ``out_proj``, ...) whose output differs from the reference's,
    from a second, traced forward pass on each side; unchanged when none differs or it cannot tell."""
    if failure.message_id not in ("compare.values", "compare.values_exact"):
        return failure
    traced = {k: v for k, v in request.items() if k != "grad_seed"}
    traced["trace"] = True
    try:
        mine = student.run("module.forward", swap=swap, what=what, time_limit_s=time_limit_s, **traced)
        theirs = dict(ref.run("module.forward", **traced).get("trace") or [])
    except GradeFailure:
        return failure
    for entry in mine.get("trace") or []:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            continue
        name, value = entry
        expected = theirs.get(name)
        if not (is_tensor(value) and isinstance(expected, torch.Tensor)):
            continue
        if value.shape != expected.shape or value.dtype != expected.dtype or not close(value, expected, tol):
            where = phrase("compare.where_and_submodule", where=failure.params.get("where", ""), name=name)
            return GradeFailure(failure.message_id, diagnosis=failure.diagnosis,
                                details={**failure.details, "first_submodule": name},
                                **{**failure.params, "where": where})
    return failure


def differing_buffers(got: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the buffers the student's module built (``got``) whose values differ from the
    reference's (a bool mask and a 0/1 float mask with the same entries are equal)."""
    differ = []
    for name, value in got.items():
        expected = state.get(name)
        if not (is_tensor(value) and isinstance(expected, torch.Tensor) and value.shape == expected.shape
                and bool(torch.equal(value.to(torch.float64), expected.to(torch.float64)))):
            differ.append(name)
    return differ


def _blame_buffers(failure: GradeFailure, student: Student, request: dict[str, Any], got: Mapping[str, Any],
                   state: Mapping[str, torch.Tensor], out: Any, tol: Any, what: str, swap: Sequence[str],
                   time_limit_s: float | None) -> None:
    """The forward check ran with the student's own buffers and failed. When those buffers differ
    from the reference's and the same call with the reference's buffers loaded gives the right
    output, the buffers alone are wrong: say so (the mask built in ``__init__``)."""
    differ = differing_buffers(got.get("buffers") or {}, state)
    if not differ or not is_tensor(out):
        return
    try:
        again = student.run("module.forward", swap=swap, what=what, time_limit_s=time_limit_s,
                            **{**request, "keep_buffers": False})
    except GradeFailure:
        return
    if isinstance(again, dict) and close(again.get("output"), out, tol):
        raise GradeFailure("module.buffer_wrong", what=what, names=", ".join(differ),
                           diagnosis=failure.diagnosis,
                           details={**failure.details, "buffers": differ}) from failure


def call_function(student: Student, ref: Any, module: str, name: str, args: Sequence[Any] = (),
                  kwargs: dict[str, Any] | None = None, *, swap: Sequence[str] = (),
                  seed: int | None = None, what: str | None = None,
                  time_limit_s: float | None = None) -> tuple[Any, Any]:
    """Call ``module.name(*args, **kwargs)`` on both sides; returns (student's, reference's)."""
    request: dict[str, Any] = dict(module=module, name=name, args=list(args), kwargs=kwargs or {}, seed=seed)
    expected = ref.run("call", **request)
    got = student.run("call", swap=swap, what=what or name, time_limit_s=time_limit_s, **request)
    return got, expected


def expect_same_outcome(student: Any, got: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
    """A call answered as ``{"value": ...}`` or ``{"error": type, "message": ...}`` (``ch06.call_or_error``):
    the student's code raised where the reference returns (reported with its file and line, never as
    a value of None), or returned where the reference raises, or raised another exception."""
    if "error" in got and "error" not in expected:
        from grader.notebooks.locations import describe

        worker = getattr(student, "worker", None)
        where = describe(got.get("file"), got.get("line"), getattr(worker, "submission", None))
        raise GradeFailure("check.student_raised", what=what, type=got["error"], message=got.get("message", ""),
                           where=where, source_line=got.get("source_line") or "?",
                           details={"kind": "exception", "type": got["error"], "file": got.get("file"),
                                    "line": got.get("line")})
    if "error" in expected and got.get("error") != expected["error"]:
        raise GradeFailure("ch06.expected_error", what=what, error=expected["error"],
                           got=got.get("error") or repr(got.get("value"))[:120])


# ---- reference weights that make the mistakes visible -------------------------------------------


def perturb_layer_norms(sd: Mapping[str, torch.Tensor], seed: int = 7) -> dict[str, torch.Tensor]:
    """A copy of ``sd`` whose LayerNorm ``scale``/``shift`` are random instead of ones/zeros."""
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, value in sd.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "scale" and value.is_floating_point():
            value = 1 + 0.5 * torch.randn(value.shape, generator=generator, dtype=value.dtype)
        elif leaf == "shift" and value.is_floating_point():
            value = 0.3 * torch.randn(value.shape, generator=generator, dtype=value.dtype)
        out[name] = value
    return out


class Perturbed:
    """Wraps the ``ref`` fixture: its ``module.state_dict`` answers get random LayerNorm parameters."""

    def __init__(self, ref: Any, seed: int = 7) -> None:
        self._ref = ref
        self._seed = seed

    def run(self, recipe: str, /, **inputs: Any) -> Any:
        result = self._ref.run(recipe, **inputs)
        if recipe == "module.state_dict":
            return perturb_layer_norms(result, self._seed)
        return result


# ---- dropout left on in eval mode -------------------------------------------------------------


def expect_no_dropout_in_eval(student: Any, ref: Any, name: str, cfg: dict[str, Any], inputs: list[Any], *,
                              swap: tuple[str, ...] = (), what: str | None = None) -> None:
    """With dropout rates of 0.5 in eval mode the output must equal the reference's; if two eval
    calls differ, dropout is still active (``ch04_dropout_in_eval``)."""
    what = what or name
    request = dict(module="ch04", name=name, args=[cfg], kwargs={}, inputs=inputs, train=False, seed=0,
                   repeat=2)
    state = Perturbed(ref).run("module.state_dict", module="ch04", name=name, args=[cfg], kwargs={}, seed=0)
    got = student.run("module.forward", swap=swap, what=phrase("what.in_eval_mode", what=what), state_dict=state, **request)
    outputs = got.get("outputs") or []
    if len(outputs) == 2 and all(isinstance(o, torch.Tensor) for o in outputs) \
            and outputs[0].shape == outputs[1].shape and not torch.allclose(outputs[0], outputs[1]):
        raise GradeFailure("ch04.dropout_in_eval", what=what, diagnosis="ch04_dropout_in_eval")
    module_forward(student, Perturbed(ref), "ch04", name, [cfg], inputs, swap=swap, what=what, train=False,
                   backward=False)
