"""The one tolerance policy (grader/checking/tolerance.py): rounding-level differences pass at any
magnitude, real mistakes fail, and named-mistake matching stays as sharp as before."""

from __future__ import annotations

import math

import torch

from grader.checking.compare import close, match_mistake
from grader.checking.tolerance import policy, unit_roundoff, within


def gelu(x: torch.Tensor, c: torch.Tensor | float) -> torch.Tensor:
    return 0.5 * x * (1 + torch.tanh(c * (x + 0.044715 * x * x * x)))


def test_a_float64_constant_instead_of_the_books_float32_one_passes() -> None:
    """The issue's case: GELU with math.sqrt(2 / math.pi) vs the book's float32 constant, through a
    linear layer and back: gradients of order 10 differ by ~1e-7, also on their small entries."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 32, dtype=torch.float64, generator=g)
    w = torch.randn(32, 32, dtype=torch.float64, generator=g)
    v = torch.randn(8, 32, dtype=torch.float64, generator=g)
    book = torch.sqrt(torch.tensor(2.0 / torch.pi))  # float32, as printed

    def grad(c: torch.Tensor | float) -> torch.Tensor:
        xs = x.clone().requires_grad_(True)
        (gelu(xs @ w, c) * v).sum().backward()
        assert xs.grad is not None
        return xs.grad

    got, expected = grad(math.sqrt(2 / math.pi)), grad(book)
    assert 1e-8 < float((got - expected).abs().max()) < 1e-6
    # the old per-entry rule (rtol 1e-6, atol 1e-8) failed this correct code
    assert not torch.allclose(got, expected, rtol=1e-6, atol=1e-8)
    assert close(got, expected, policy(torch.float64))


def test_real_mistakes_still_fail() -> None:
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    right = gelu(x, math.sqrt(2 / math.pi))
    tol = policy(torch.float64)
    assert not close(torch.nn.functional.gelu(x), right, tol)  # exact erf GELU: ~1e-3 off
    assert not close(x * torch.sigmoid(1.702 * x), right, tol)
    assert not close(right * (1 + 1e-4), right, tol)
    assert not close(right + 1e-4 * float(right.abs().max()), right, tol)


def test_named_mistakes_are_matched_as_before() -> None:
    x = torch.linspace(-3, 3, 11, dtype=torch.float64)
    right = gelu(x, math.sqrt(2 / math.pi))
    mistakes = {"erf": torch.nn.functional.gelu(x), "half_missing": 2 * right}
    tol = policy(torch.float64)
    assert match_mistake(torch.nn.functional.gelu(x) + 1e-12, mistakes, tol) == "erf"
    assert match_mistake(2 * right, mistakes, tol) == "half_missing"
    assert match_mistake(right, mistakes, tol) is None


def test_bounds_scale_with_magnitude_precision_and_depth() -> None:
    small = torch.tensor([1e-3, 1.0], dtype=torch.float64)
    large = small * 1e6
    tol = policy(torch.float64)
    assert float(tol.bound(large)[0]) > 1e5 * float(tol.bound(small)[0])  # relative to the tensor's scale
    assert policy(torch.float64, depth=8).norm_rtol == 2 * policy(torch.float64, depth=4).norm_rtol
    assert policy(torch.float32).norm_rtol == policy(torch.float64).norm_rtol  # float32 constants
    assert unit_roundoff(torch.float16) > unit_roundoff(torch.float32) == unit_roundoff(torch.float64)
    assert policy(torch.float64, "cuda").norm_rtol == 10 * policy(torch.float64).norm_rtol


def test_nan_and_infinities() -> None:
    tol = policy(torch.float64)
    inf = torch.tensor([float("inf"), 1.0], dtype=torch.float64)
    assert within(inf.clone(), inf, tol)
    assert not within(torch.tensor([float("-inf"), 1.0], dtype=torch.float64), inf, tol)
    nan = torch.tensor([float("nan"), 1.0], dtype=torch.float64)
    assert not within(nan, nan, tol)  # as torch.allclose: NaN never equals anything
    assert not within(nan, torch.tensor([0.0, 1.0], dtype=torch.float64), tol)


def test_the_bound_is_said_in_the_readers_language_and_token_ids_are_compared_as_ids() -> None:
    """Issue 22, finding 5: the bound comes from the message catalog (no English inside a Chinese
    sentence), and token ids that differ say which id was expected, not a max |diff|."""
    import pytest

    from grader.checking.compare import expect_tensor
    from grader.checking.failures import GradeFailure
    from grader.messages import current_lang, set_lang

    before = current_lang()
    try:
        set_lang("zh-CN")
        with pytest.raises(GradeFailure) as floats:
            expect_tensor(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), "out", tol=policy(torch.float32))
        assert "max|expected|" not in str(floats.value) and "最大的|期望值|" in str(floats.value)
        assert not any(word in str(floats.value) for word in ("expected", "largest", "allowed"))
        set_lang("en")
        with pytest.raises(GradeFailure) as floats:
            expect_tensor(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), "out", tol=policy(torch.float32))
        assert "Allowed per value: `atol + rtol x |expected|`" in str(floats.value)
        ids = torch.tensor([[15496, 11, 314], [716, 257, 50256]])
        wrong = ids.clone()
        wrong[1, 2] = 13
        with pytest.raises(GradeFailure) as exact:
            expect_tensor(wrong, ids, "token ids", token_dim=1)
        said = str(exact.value)
        assert "from token 2 on" in said and "expected 50256, got 13" in said and "must match exactly" in said
        assert "max |diff|" not in said and "rtol" not in said
        assert exact.value.details["expected_value"] == 50256 and exact.value.details["got_value"] == 13
    finally:
        set_lang(before)
