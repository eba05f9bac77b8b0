"""The one tolerance policy for comparing student results with the reference.

Grading compares in float64 where it can. Correct-but-different implementations (einsum instead
of matmul, ``x * rsqrt(v)`` instead of ``x / sqrt(v)``, ``math.sqrt(2 / math.pi)`` instead of the
book's float32 ``torch.sqrt(torch.tensor(2 / torch.pi))``) then differ by rounding alone. Rounding
errors follow numerical analysis, not guesses:

- they scale with the magnitude of the values being compared: an error made on the largest entries
  of a tensor spreads to its small ones (a gradient of order 1 leaves differences of ~1e-7 on
  entries of order 1e-3), so the bound has a term relative to the tensor's largest magnitude
  (``norm_rtol``), besides the per-entry ``rtol`` and a floor ``atol``;
- they scale with the unit roundoff of the precision the computation really ran in: a float64
  computation that uses a float32 constant (the book's GELU does) is only float32-accurate, so a
  float64 comparison allows float32's epsilon;
- they grow with the depth of the computation (each layer adds its rounding; ``depth``) and with
  long reductions (``reduction`` terms summed: the error grows like its square root).

Real mistakes (a wrong mask, a missing scale, a swapped axis) change results by 1e-3 relative and far
more, so they stay far outside these bounds, and named-mistake detection stays as sharp as it was.
Accelerators use other kernels and summation orders: their bounds are wider.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch

from grader.messages import Phrase, phrase


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    norm_rtol: float = 0.0  # times the largest |expected| entry of the compared tensor

    def describe(self) -> Phrase:
        """The bound in words, for a message: rtol and atol as numpy's ``isclose`` names them, and
        the term relative to the tensor's largest value said in the reader's language."""
        if self.norm_rtol:
            return phrase("tolerance.bounds_with_norm", rtol=self.rtol, atol=self.atol, norm_rtol=self.norm_rtol)
        return phrase("tolerance.bounds", rtol=self.rtol, atol=self.atol)

    def bound(self, expected: torch.Tensor) -> torch.Tensor:
        """The largest allowed |got - expected| for each entry of ``expected`` (float64)."""
        e64 = expected.detach().to(torch.float64)
        finite = e64[torch.isfinite(e64)]
        scale = float(finite.abs().max()) if finite.numel() else 0.0
        allowed = self.atol + self.norm_rtol * scale + self.rtol * e64.abs()
        return torch.where(torch.isfinite(e64), allowed, torch.zeros_like(allowed))  # inf: exact only


_BASE: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(1e-6, 1e-8),
    torch.float32: Tolerance(1e-4, 1e-5),
    torch.bfloat16: Tolerance(2e-2, 2e-2),
    torch.float16: Tolerance(5e-3, 5e-3),
}
# Units of roundoff allowed per layer of depth, relative to the tensor's largest magnitude.
ROUNDOFF_UNITS_PER_LAYER = 8.0
DEFAULT_DEPTH = 4


def unit_roundoff(dtype: torch.dtype) -> float:
    """The precision a computation in ``dtype`` really has: float64 grading runs the book's code,
    whose constants are float32, so nothing is better than float32's epsilon."""
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 0.0
    return max(eps, torch.finfo(torch.float32).eps)


def policy(dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
           reduction: int = 1, depth: int = DEFAULT_DEPTH) -> Tolerance:
    """Bounds for results of ``dtype`` computed on ``device`` through ``depth`` layers with
    reductions of ``reduction`` terms."""
    base = _BASE.get(dtype, Tolerance(0.0, 0.0))
    scale = max(1.0, math.sqrt(max(reduction, 1)) / 16)
    if torch.device(device).type != "cpu":
        scale *= 10  # different kernels and summation orders on accelerators
    norm = unit_roundoff(dtype) * ROUNDOFF_UNITS_PER_LAYER * max(depth, 1) if base.rtol else 0.0
    return Tolerance(base.rtol * scale, base.atol * scale, norm * scale)


# Set while a reference mutant is compared with the student's answers (grader/checking/mutants/):
# there a NaN where the student has a NaN is evidence that both made the same slip.
_NAN_MATCHES_NAN: ContextVar[bool] = ContextVar("nan_matches_nan", default=False)


@contextmanager
def nan_matches_nan() -> Iterator[None]:
    token = _NAN_MATCHES_NAN.set(True)
    try:
        yield
    finally:
        _NAN_MATCHES_NAN.reset(token)


def within(got: torch.Tensor, expected: torch.Tensor, tol: Tolerance) -> bool:
    """``got`` equals ``expected`` within ``tol`` (same shape; infinities must be equal, and NaN never
    equals anything, as in ``torch.allclose``, except inside :func:`nan_matches_nan`)."""
    g64 = got.detach().to(torch.float64)
    e64 = expected.detach().to(torch.float64)
    if g64.shape != e64.shape:
        return False
    diff = (g64 - e64).abs()
    equal = (diff <= tol.bound(expected)) | (g64 == e64)
    if _NAN_MATCHES_NAN.get():
        equal |= g64.isnan() & e64.isnan()
    return bool(equal.all())
