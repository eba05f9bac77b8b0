"""Comparisons on the trusted side: values, shapes, dtypes, gradients, state_dict keys.

Each ``expect_*`` function raises :class:`GradeFailure` with a message that says what differs and
where (the first diverging token, the parameter name), and, when the student's result equals a
known mistake (``mistakes``: outputs of deliberately wrong reference variants, computed here),
names that mistake as the diagnosis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Union

import torch

from grader.checking.failures import GradeFailure
from grader.messages import phrase
from grader.checking.tolerance import Tolerance, policy, within


def is_tensor(value: Any) -> bool:
    return type(value) is torch.Tensor


def close(got: Any, expected: torch.Tensor, tol: Tolerance) -> bool:
    if not is_tensor(got) or got.shape != expected.shape:
        return False
    if got.dtype == torch.bool or not got.is_floating_point():
        return bool(torch.equal(got.to(expected.dtype), expected))
    return within(got, expected, tol)


# Known-mistake outputs, or a function that computes them: only called once a comparison fails,
# so passing checks never pay for the mistakes.
MistakeOutputs = Union[Mapping[str, Any], Callable[[], Mapping[str, Any]], None]


def match_mistake(got: Any, mistakes: MistakeOutputs, tol: Tolerance) -> str | None:
    """The id of the first known mistake whose output equals ``got``."""
    if callable(mistakes):
        mistakes = mistakes()
    for diagnosis, wrong in (mistakes or {}).items():
        if is_tensor(wrong) and close(got, wrong, tol):
            return diagnosis
    return None


def expect_tensor(got: Any, expected: torch.Tensor, what: str, *, tol: Tolerance | None = None,
                  token_dim: int | None = None, mistakes: MistakeOutputs = None,
                  check_dtype: bool = True) -> None:
    """``got`` must be a plain tensor equal to ``expected`` within ``tol``."""
    tol = tol or policy(expected.dtype)
    if not is_tensor(got):
        raise GradeFailure("compare.not_tensor", what=what, got=type(got).__name__)
    if tuple(got.shape) != tuple(expected.shape):
        diagnosis = match_mistake(got, mistakes, tol)
        raise GradeFailure("compare.shape", what=what, expected=list(expected.shape),
                           got=list(got.shape), diagnosis=diagnosis,
                           details={"expected_shape": list(expected.shape), "shape": list(got.shape)})
    if check_dtype and got.dtype != expected.dtype:
        raise GradeFailure("compare.dtype", what=what, expected=str(expected.dtype), got=str(got.dtype))
    if close(got, expected, tol):
        return
    diagnosis = match_mistake(got, mistakes, tol)
    if got.is_floating_point():
        bad = ~torch.isfinite(got)
        if bool(bad.any()) and not bool((~torch.isfinite(expected)).any()):
            index = [int(i) for i in bad.nonzero()[0].tolist()]
            raise GradeFailure("compare.nonfinite", what=what, count=int(bad.sum()), index=index,
                               diagnosis=diagnosis, details={"index": index})
    g64 = got.to(torch.float64)
    e64 = expected.to(torch.float64)
    diff = (g64 - e64).abs()
    outside = ~(diff <= tol.bound(expected)) & (g64 != e64)
    first = [int(i) for i in outside.nonzero()[0].tolist()] if bool(outside.any()) else []
    details: dict[str, Any] = {"max_abs_diff": float(diff.max()), "first_index": first,
                               "mismatched": int(outside.sum()), "total": int(outside.numel())}
    where = ""
    if token_dim is not None and first and expected.dim() > token_dim:
        dims = [d for d in range(expected.dim()) if d != token_dim % expected.dim()]
        per_token = outside.permute(token_dim % expected.dim(), *dims).reshape(outside.shape[token_dim], -1).any(1)
        token = int(per_token.nonzero()[0])
        details["first_token"] = token
        where = _where("compare.where_token", token=token)
    elif first:
        where = _where("compare.where_index", index=first)
    if not (expected.is_floating_point() or expected.is_complex()) and not got.is_floating_point():
        # ids, counts, masks: exact values, where a difference in size says nothing
        expected_value, got_value = expected[tuple(first)].item(), got[tuple(first)].item()
        raise GradeFailure("compare.values_exact", what=what, where=where, count=int(outside.sum()),
                           total=int(outside.numel()), expected_value=expected_value, got_value=got_value,
                           diagnosis=diagnosis, details={**details, "expected_value": expected_value,
                                                         "got_value": got_value})
    raise GradeFailure("compare.values", what=what, where=where, max_diff=float(diff.max()),
                       count=int(outside.sum()), total=int(outside.numel()),
                       tolerance=tol.describe(), diagnosis=diagnosis, details=details)


def _where(key: str, **params: Any) -> str:
    return phrase(key, **params)


def expect_equal(got: Any, expected: Any, what: str, *, diagnosis: str | None = None) -> None:
    """Exact equality for ids, counts, strings, lists (tensors compared exactly too)."""
    if is_tensor(expected):
        if not (is_tensor(got) and got.shape == expected.shape and bool(torch.equal(got.to(expected.dtype), expected))):
            shown = got.tolist() if is_tensor(got) else got
            raise GradeFailure("compare.value", what=what, expected=_short(expected.tolist()),
                               got=_short(shown), diagnosis=diagnosis)
        return
    if got != expected:
        raise GradeFailure("compare.value", what=what, expected=_short(expected), got=_short(got),
                           diagnosis=diagnosis)


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def expect_state_keys(got: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
    """Same state_dict names and parameter shapes as the reference (missing/extra named)."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing:
        raise GradeFailure("compare.keys_missing", what=what, names=", ".join(missing),
                           details={"missing": missing, "unexpected": unexpected})
    if unexpected:
        raise GradeFailure("compare.keys_unexpected", what=what, names=", ".join(unexpected),
                           details={"unexpected": unexpected})
    for name, shape in expected.items():
        if list(got[name]) != list(shape):
            # the same sizes in another order: in/out features swapped; else a size itself differs
            swapped = sorted(got[name]) == sorted(shape)
            raise GradeFailure("compare.param_shape" if swapped else "compare.param_size", what=what, name=name,
                               got=list(got[name]), expected=list(shape))


def expect_grads(got: Mapping[str, Any], expected: Mapping[str, Any], what: str,
                 tol: Tolerance | None = None) -> None:
    """Every parameter's gradient equals the reference's (named on failure)."""
    missing = sorted(name for name, g in expected.items() if is_tensor(g) and not is_tensor(got.get(name)))
    if missing:
        raise GradeFailure("compare.grad_missing", what=what, names=", ".join(missing))
    for name, g in expected.items():
        if not is_tensor(g):
            continue
        local = tol or policy(g.dtype)
        if not close(got[name], g, local):
            diff = float((got[name].to(torch.float64) - g.to(torch.float64)).abs().max())
            raise GradeFailure("compare.grad", what=f"{what} {name}", max_diff=diff,
                               details={"parameter": name, "max_abs_diff": diff})


# ---- plain values and token ids (nested numbers, lists, tensors; chapter 5 onwards) ---------------


def values_close(a: Any, b: Any, rtol: float = 1e-6, atol: float = 1e-8) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape:
            return False
        if not a.is_floating_point() or not b.is_floating_point():
            return bool(torch.equal(a.to(torch.int64), b.to(torch.int64)))
        return bool(torch.allclose(a.to(torch.float64), b.to(torch.float64), rtol=rtol, atol=atol))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(float(a)) or math.isnan(float(b)):
            return math.isnan(float(a)) and math.isnan(float(b))
        return abs(float(a) - float(b)) <= atol + rtol * abs(float(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_close(x, y, rtol, atol) for x, y in zip(a, b))
    return bool(a == b)


def first_match(got: Any, mistakes: Mapping[str, Any], rtol: float = 1e-6, atol: float = 1e-8) -> str | None:
    for diagnosis, wrong in mistakes.items():
        if values_close(got, wrong, rtol, atol):
            return diagnosis
    return None


def expect_number(got: Any, expected: float, what: str, mistakes: Mapping[str, float] | None = None,
                  rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """``got`` must be a real number (a 0-d tensor counts) equal to ``expected`` within tolerance."""
    if isinstance(got, torch.Tensor) and got.dim() == 0:
        got = float(got)
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise GradeFailure("ch05.not_number", what=what, got=type(got).__name__)
    if values_close(got, expected, rtol, atol):
        return
    diagnosis = first_match(got, mistakes or {}, rtol, atol)
    raise GradeFailure("ch05.number", what=what, expected=float(expected), got=float(got), diagnosis=diagnosis,
                       details={"expected": float(expected), "got": float(got)})


def expect_ids(got: Any, expected: torch.Tensor, what: str, prompt_len: int,
               mistakes: Any = None) -> None:
    """Token ids equal; on a difference, name the first generated position that differs and,
    when ``mistakes()`` (called only then) has an equal output, the slip."""
    if not isinstance(got, torch.Tensor):
        raise GradeFailure("compare.not_tensor", what=what, got=type(got).__name__)
    if got.shape == expected.shape and bool(torch.equal(got.to(torch.int64), expected.to(torch.int64))):
        return
    found = mistakes() if callable(mistakes) else (mistakes or {})
    diagnosis = first_match(got, found)
    n = min(got.shape[-1], expected.shape[-1]) if got.dim() == expected.dim() == 2 else 0
    position = next((j for j in range(n) if not torch.equal(got[:, j].to(torch.int64), expected[:, j])), n)
    raise GradeFailure("ch05.ids_differ", what=what, expected=_short(expected.tolist(), 240),
                       got=_short(got.tolist(), 240), position=max(position - prompt_len, 0), diagnosis=diagnosis,
                       details={"first_generated_position": max(position - prompt_len, 0)})


def raise_student_error(result: Mapping[str, Any], what: str, diagnosis: str | None = None) -> None:
    """A recipe caught an exception from the student's code: report it (with a named slip)."""
    raise GradeFailure("ch05.raised", what=what, error=result.get("error", "?"),
                       message=result.get("message", ""), diagnosis=diagnosis)
